"""Many syncs at once: 500 bank logins synced by one worker process against a sandbox whose
refresh jobs take 2 s, then 1 and 2 procrastinate worker processes on PostgreSQL.

The floor is the sandbox job itself: a sync cannot finish before its refresh does (2 s: the
sandbox runs ``LogInPanel`` then ``TransactionTable``, 1 s each). Every part is real and apart:
the sandbox is its own process (``sophsync sandbox``) so that the peak memory read is the
worker's alone; each worker is its own process running what ``sophsync worker`` runs (the
local :class:`~sophsync.jobs.Worker` or procrastinate's), except that it may run more than the
command's 64 jobs at a time; the syncs go over HTTP on 127.0.0.1. The connections are made the
ordinary way (connect at the MFA-free test bank, link every account), then marked as not fresh
so that each sync asks the bank to refresh. Before the workers, 50 of the logins are synced in
the benchmark's own process to time one sync's CPU and to count what it does (Python function
calls, SQL statements, Sophtron requests: the same on every run of the same code), and the
local queue's own work for one job (claiming, finishing, an ask that finds nothing) is timed in
a store of its own.

``python bench/concurrency.py worker ...`` is the worker process itself (started by the
benchmark, not by hand).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from common import ACCESS_KEY, TODAY, USER_ID, Record, postgres_database, stop, wait_until_up
from sqlalchemy import event, func, select, update

from sophsync.core import connect, credentials, families, link, sync
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue, Queue, Worker, defer_sync, pool_size_for
from sophsync.jobs.pg import ProcrastinateQueue
from sophsync.settings import Settings
from sophsync.store.models import Connection, ConnectionStatus, RunStatus, SyncRun

T = TypeVar("T")

#: Bank logins synced at once.
CONNECTIONS = 500
#: Logins synced at once in the benchmark's own process to time one sync's CPU and count its work.
TIMED_SYNCS = 50
#: Jobs a local worker runs at a time: `sophsync worker --concurrency 64`, then one job slot per
#: login (the most `--concurrency` accepts).
LOCAL_CONCURRENCY = (64, 500)
#: Logins in the PostgreSQL runs. Fewer than CONNECTIONS, so that the suite stays within minutes;
#: the rate per worker is what the comparison needs.
PG_CONNECTIONS = 100
#: Jobs per procrastinate worker. Each running job may hold a database connection, and two
#: workers with their own pools must stay under PostgreSQL's default max_connections of 100
#: (docs/cli.md): 2 x 64 did not, and syncs failed on "too many clients".
PG_CONCURRENCY = 32
#: Each step of a sandbox job; a refresh has two steps.
STEP_SECONDS = 1.0
FLOOR_SECONDS = 2 * STEP_SECONDS
#: A run that has not finished by then is recorded as far as it got.
RUN_TIMEOUT = 150.0
#: The worker's log lines for a job that failed or could not be fetched.
ERROR = re.compile(r"(job \d+ \(\w+\) failed|worker \S+ could not fetch a job)")
NOMFA = "926623ca-5952-4921-8f77-2023f1cdde8e"
PYTHON = sys.executable
HERE = Path(__file__).resolve()


def run(record: Record) -> None:
    with tempfile.TemporaryDirectory() as folder, sandbox_process() as sandbox_url:
        data_dir = Path(folder)
        sqlite_url = f"sqlite:///{data_dir / 'sophsync.db'}"
        core = Core.open(Settings(data_dir=data_dir, database_url=sqlite_url), migrate=True)
        try:
            ids = set_up(core, sandbox_url, CONNECTIONS)
            lone = lone_sync(core, ids[0])
            record(
                "concurrency_one_sync",
                lone,
                "s",
                f"one sync alone (refresh job {FLOOR_SECONDS:g} s, SQLite)",
            )
            one_sync(record, core, ids[1 : 1 + TIMED_SYNCS])
            queue_steps(record, data_dir)
            for concurrency in LOCAL_CONCURRENCY:
                result = measure(
                    core, LocalQueue(core), ids, data_dir, sqlite_url, "local", concurrency, 1
                )
                report(record, f"local_c{concurrency}", result, len(ids), "SQLite, local queue")
        finally:
            core.close()
        with postgres_database("postgresql+psycopg") as pg_url:
            pg = Core.open(
                Settings(data_dir=data_dir, database_url=pg_url, job_backend="procrastinate"),
                migrate=True,
            )
            queue = ProcrastinateQueue(pg).open()
            try:
                queue.apply_schema()
                ids = set_up(pg, sandbox_url, PG_CONNECTIONS)
                for workers in (1, 2):
                    result = measure(
                        pg, queue, ids, data_dir, pg_url, "procrastinate", PG_CONCURRENCY, workers
                    )
                    report(
                        record,
                        f"pg_{workers}worker{'s' if workers > 1 else ''}",
                        result,
                        len(ids),
                        f"PostgreSQL, procrastinate, --concurrency {PG_CONCURRENCY} each",
                    )
            finally:
                queue.close()
                pg.close()


def one_sync(record: Record, core: Core, ids: list[int]) -> None:
    """What one sync costs, from the logins' syncs at once in this process: counted for their
    first sync (30 days of history to import), then timed and counted for a sync like the
    500-slot worker's (synced before: nothing new to import)."""
    for what, value in sync_work(core, ids).items():
        record(f"concurrency_first_sync_{what}", value, *WORK[what])
    record(
        "concurrency_sync_cpu",
        sync_cpu(core, ids),
        "ms",
        f"CPU time of one sync of a login synced before, the median of {len(ids)} at once in "
        "one process (each thread's own, no worker or queue; SQLite)",
    )
    for what, value in sync_work(core, ids).items():
        record(f"concurrency_sync_{what}", value, *WORK[what])


#: Jobs a round of :func:`queue_steps` defers, claims, finishes and asks about.
QUEUE_JOBS = 500


def queue_steps(record: Record, data_dir: Path) -> None:
    """The local queue's own work for one job, in a store of its own: ``QUEUE_JOBS`` jobs
    deferred, claimed at once, finished one by one, then as many asks that find nothing due
    (what a worker does each time one of its jobs ends). CPU time of this process per job, the
    best of three rounds."""
    store = data_dir / "queue"
    store.mkdir()
    core = Core.open(
        Settings(data_dir=store, database_url=f"sqlite:///{store / 'queue.db'}"), migrate=True
    )
    try:
        queue = LocalQueue(core)
        rounds: dict[str, list[float]] = {"claim": [], "finish": [], "empty_claim": []}
        for _ in range(3):
            for index in range(QUEUE_JOBS):
                queue.defer("schedule_syncs", lock=f"bench-{index}")
            start = time.process_time()
            claimed = queue.claim_many("bench", QUEUE_JOBS)
            claiming = time.process_time()
            for job in claimed:
                queue.finish(job.id, worker="bench", result="ok")
            finishing = time.process_time()
            for _ in claimed:
                queue.claim_many("bench", QUEUE_JOBS)
            asking = time.process_time()
            assert len(claimed) == QUEUE_JOBS
            rounds["claim"].append(claiming - start)
            rounds["finish"].append(finishing - claiming)
            rounds["empty_claim"].append(asking - finishing)
    finally:
        core.close()
    what = {
        "claim": f"a job claimed with {QUEUE_JOBS - 1} others in one ask",
        "finish": "a job finished (its end recorded)",
        "empty_claim": "an ask for due jobs that finds none",
    }
    for step, seconds in rounds.items():
        record(
            f"concurrency_queue_{step}",
            1000 * min(seconds) / QUEUE_JOBS,
            "ms",
            f"CPU time of the local queue's own work: {what[step]} (SQLite, best of 3 rounds)",
        )


@dataclass
class Result:
    seconds: float
    finished: int
    succeeded: int
    peak_mb: list[float]
    enqueue_seconds: float
    errors: int
    #: CPU time of the worker processes, from start to exit (start-up included).
    cpu_seconds: float
    #: From the first sync enqueued to the first sync started by a worker.
    pickup_seconds: float


def report(record: Record, name: str, result: Result, total: int, where: str) -> None:
    done = f"{result.succeeded}/{total} succeeded"
    if result.finished < total:
        done += f", stopped after {RUN_TIMEOUT:g} s"
    record(
        f"concurrency_{name}_wall",
        result.seconds,
        "s",
        f"{total} syncs, enqueue to idle ({done}; floor {FLOOR_SECONDS:g} s, "
        f"{result.seconds / FLOOR_SECONDS:.1f}x); {where}",
    )
    record(
        f"concurrency_{name}_rate",
        result.finished / result.seconds,
        "syncs/s",
        f"{len(result.peak_mb)} worker process(es); enqueue took {result.enqueue_seconds:.2f} s",
    )
    record(
        f"concurrency_{name}_pickup",
        result.pickup_seconds,
        "s",
        "from the first sync enqueued to the first sync started (an idle local worker reads "
        "the queue every 0.1 s; procrastinate's hear of jobs through PostgreSQL's notifications)",
    )
    record(
        f"concurrency_{name}_errors",
        result.errors,
        "errors",
        "jobs failed or not fetched, as the worker logged them (each is retried later)",
    )
    record(
        f"concurrency_{name}_cpu_per_sync",
        1000 * result.cpu_seconds / max(1, result.finished),
        "ms",
        "CPU time of the worker process(es) per finished sync (user + system, start-up "
        "included): what one process can sync per second of CPU",
    )
    for index, peak in enumerate(result.peak_mb):
        record(
            f"concurrency_{name}_rss{'' if len(result.peak_mb) == 1 else index + 1}",
            peak,
            "MB",
            "peak resident memory of the worker process (VmHWM)",
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sandbox_process() -> Iterator[str]:
    """``sophsync sandbox`` in its own process; its API URL."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            PYTHON,
            "-m",
            "sophsync",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--user-id",
            USER_ID,
            "--access-key",
            ACCESS_KEY,
            "--job-seconds",
            str(STEP_SECONDS),
            "--today",
            TODAY.isoformat(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        root = f"http://127.0.0.1:{port}"
        wait_until_up(f"{root}/_sandbox/stats", process, "the sandbox", 30)
        yield f"{root}/api"
    finally:
        stop(process, 10)


def set_up(core: Core, sandbox_url: str, count: int) -> list[int]:
    """``count`` connected logins at the MFA-free bank, 1 to 3 accounts each, all linked."""
    actor = families.create_family(core, "Bench", "bench@example.com", "bench password")
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY, sandbox_url)

    def start(index: int) -> int:
        username = f"bench{index}+accounts={1 + index % 3}+years=1"
        return connect.start_connection(
            core, actor, NOMFA, username, "pw", institution_name="Sophtron Bank NoMFA"
        ).id

    def finish(connection_id: int) -> None:
        view = connect.wait_for_connection(core, connection_id, timeout=60, interval=0.5)
        if view.status is not ConnectionStatus.CONNECTED:
            raise RuntimeError(f"connection {connection_id} is {view.status.value}")
        link.link_all(core, actor, connection_id, history_days=30)

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(start, range(count)))
        list(pool.map(finish, ids))
    return ids


def stale(core: Core, ids: list[int]) -> int:
    """Make every login due for a refresh at the bank, as the next day's sync finds it (synced
    before, not fresh: so the workers' own schedule defers nothing), with the refresh time its
    syncs would have learnt (the sandbox's 2 s: what the set-up's connect jobs taught depends on
    how busy the sandbox was then); the id of the last sync run so far."""
    with core.session() as session:
        session.execute(
            update(Connection)
            .where(Connection.id.in_(ids))
            .values(data_fresh_at=None, last_success_at=core.now(), refresh_seconds=FLOOR_SECONDS)
        )
        return int(session.scalar(select(func.coalesce(func.max(SyncRun.id), 0))) or 0)


def synced(core: Core, connection_id: int) -> sync.SyncRunView:
    """Sync the login now; raise if the sync did not succeed."""
    run = sync.sync_connection(core, connection_id)
    if run.status is not RunStatus.SUCCEEDED:
        raise RuntimeError(f"the sync failed: {run.error}")
    return run


def at_once(core: Core, ids: list[int], one: Callable[[int], T]) -> list[T]:
    """``one`` of every login at once, each on a thread of its own, after making them all due
    for a refresh."""
    stale(core, ids)
    with ThreadPoolExecutor(len(ids)) as pool:
        return list(pool.map(one, ids))


def lone_sync(core: Core, connection_id: int) -> float:
    stale(core, [connection_id])
    start = time.perf_counter()
    synced(core, connection_id)
    return time.perf_counter() - start


def sync_cpu(core: Core, ids: list[int]) -> float:
    """The CPU time one sync takes, in ms: the median of the logins' syncs run at once in this
    process, each timed by its own thread's CPU clock (steadier than a worker's CPU, which
    includes its start-up and queue, on a machine whose speed varies)."""

    def one(connection_id: int) -> float:
        start = time.thread_time()
        synced(core, connection_id)
        return time.thread_time() - start

    return 1000 * statistics.median(at_once(core, ids, one))


#: What one sync does, counted (the median of TIMED_SYNCS at once): the same on every run of the
#: same code, unlike its CPU time on a machine whose speed varies, so that two commits compare.
WORK = {
    "calls": ("calls", "Python function calls of one sync, the median (cProfile on its thread)"),
    "statements": ("statements", "SQL statements one sync executes, the median"),
    "requests": ("requests", "Sophtron requests one sync makes, the median"),
}


def sync_work(core: Core, ids: list[int]) -> dict[str, float]:
    """The logins' syncs at once in this process, each counted on its own thread: the median
    sync's Python function calls, SQL statements and Sophtron requests."""
    statements = threading.local()

    def count(*_: object) -> None:
        statements.count = getattr(statements, "count", 0) + 1

    def one(connection_id: int) -> tuple[int, int, int]:
        statements.count = 0
        profile = cProfile.Profile()
        profile.enable()
        try:
            run = synced(core, connection_id)
        finally:
            profile.disable()
        return pstats.Stats(profile).total_calls, statements.count, run.requests  # type: ignore[attr-defined]

    event.listen(core.engine, "before_cursor_execute", count)
    try:
        counted = at_once(core, ids, one)
    finally:
        event.remove(core.engine, "before_cursor_execute", count)
    return {
        what: statistics.median(row[index] for row in counted) for index, what in enumerate(WORK)
    }


def measure(
    core: Core,
    queue: Queue,
    ids: list[int],
    data_dir: Path,
    url: str,
    backend: str,
    concurrency: int,
    workers: int,
) -> Result:
    """Start ``workers`` worker processes, wait until they are ready, enqueue a sync of every
    login and time until every sync has finished; then stop the workers and read their peak
    memory."""
    after = stale(core, ids)
    log_path = data_dir / f"worker-{backend}-{concurrency}-{workers}.log"
    log = log_path.open("w")
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                PYTHON,
                str(HERE),
                "worker",
                "--data-dir",
                str(data_dir),
                "--database-url",
                url,
                "--backend",
                backend,
                "--concurrency",
                str(concurrency),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        for _ in range(workers)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker did not start")
        time.sleep(1.0)  # let them settle into waiting for jobs
        enqueued_at = core.now()
        start = time.perf_counter()
        for connection_id in ids:
            defer_sync(queue, connection_id)
        enqueued = time.perf_counter() - start
        deadline = start + RUN_TIMEOUT
        finished = succeeded = 0
        while time.perf_counter() < deadline:
            with core.session() as session:
                rows = session.execute(
                    select(SyncRun.status, func.count())
                    .where(SyncRun.id > after, SyncRun.status != RunStatus.RUNNING.value)
                    .group_by(SyncRun.status)
                ).all()
            finished = sum(n for _, n in rows)
            succeeded = sum(n for status, n in rows if status == RunStatus.SUCCEEDED.value)
            if finished >= len(ids):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        with core.session() as session:
            first = session.scalar(select(func.min(SyncRun.started_at)).where(SyncRun.id > after))
        pickup = (first - enqueued_at).total_seconds() if first is not None else float("nan")
        peaks = []
        cpu = 0.0
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            out, _ = process.communicate(timeout=120)
            exited = json.loads(out.strip().splitlines()[-1])
            peaks.append(exited["peak_kb"] / 1024)
            cpu += exited["cpu_seconds"]
        errors = sum(1 for line in log_path.read_text().splitlines() if ERROR.match(line))
        return Result(seconds, finished, succeeded, peaks, enqueued, errors, cpu, pickup)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.close()


def worker_main(argv: list[str]) -> None:
    """One worker process: runs jobs until SIGTERM, then prints its peak memory as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--backend", choices=["local", "procrastinate"], required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    settings = Settings(
        data_dir=args.data_dir, database_url=args.database_url, job_backend=args.backend
    )
    core = Core.open(settings, migrate=False, pool_size=pool_size_for(args.concurrency))
    try:
        if args.backend == "procrastinate":
            print("ready", flush=True)  # noqa: T201
            ProcrastinateQueue(core).run_worker(concurrency=args.concurrency, wait=True)
        else:
            runner = Worker(core, LocalQueue(core), concurrency=args.concurrency)
            runner.run_until_signalled(started=lambda: print("ready", flush=True))  # noqa: T201
    finally:
        core.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"peak_kb": peak_kb(), "cpu_seconds": cpu}), flush=True)  # noqa: T201


def peak_kb() -> int:
    """This process's peak resident memory in KiB: ``VmHWM``, which starts afresh at exec
    (``ru_maxrss`` would carry over the benchmark's own peak from before the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # not Linux: KiB or bytes


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main(sys.argv[2:])
    else:
        sys.exit("run it with: python bench/run.py --only concurrency")
