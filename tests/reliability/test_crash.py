"""Crash consistency: ``kill -9`` the worker in the middle of syncs, again and again, then let it
finish; the store must equal ``/_sandbox/truth`` exactly.

The workers are real processes on a SQLite file the test shares (the ones to be killed forked
from a launcher, see ``LAUNCHER``; the one that finishes is ``sophsync worker``). Syncs of
several logins are queued; the worker is killed at random moments (seeded, so a failure can be
replayed) once it has claimed a job, and started again each time. A job whose worker died stops
beating; after ``SOPHSYNC_JOB_STALL_SECONDS`` the next worker puts it back, releases the
connection lock it held, closes its sync run as interrupted and runs it again. Nothing is
cleaned up by the test: whatever a kill leaves half done, the engine has to mend.

Afterwards no job may be left running or waiting, no sync run left open, the database must pass
``PRAGMA integrity_check``, and every transaction must be there once with the right amount.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sophsync.core import credentials, families, sync
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue, Worker, defer_sync, tasks
from sophsync.jobs.local import job_owner
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store.models import Connection, Job, JobState, RunStatus, SyncRun
from tests.conftest import ACCESS_KEY, USER_ID, stop_processes
from tests.core.conftest import Clock
from tests.reliability.conftest import (
    LONG,
    assert_store_equals_truth,
    connect_login,
    latest_runs,
    sandbox_stats,
)

SEED = int(os.environ.get("SOPHSYNC_CRASH_SEED", "20261121"))
KILLS = 60 if LONG else 20
LOGINS = 8 if LONG else 5
#: Each bank job step takes 0.5 s, so that a sync (a refresh of two steps, then four accounts
#: read) runs long enough for most kills to land inside one.
USERNAME = "crash{n}+accounts=4+years=1+job-seconds=0.5"
#: Seconds a dead worker's job waits before the next worker runs it again. Small, to keep the
#: test short, but not so small that a live worker starved of CPU on a busy machine misses a
#: heartbeat and is taken for dead (see the note on self-reaping in docs/reliability.md).
STALL_SECONDS = 4
#: How long the worker is let run after it claimed a job before it is killed.
KILL_AFTER = (0.0, 1.0)
#: Rounds of syncs (each queues a sync of every login); the kills are spread over them, at most
#: this many in one round, so that the later rounds (after the world moved on) meet kills too.
PER_ROUND = KILLS // 2
MAX_ROUNDS = 12

pytestmark = pytest.mark.timeout(1800 if LONG else 300)


@pytest.fixture
def world_today() -> dt.date:
    """The worker runs on the wall clock, so the sandbox's world starts on today's date."""
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
def shared_core(
    make_sandbox: Callable[..., SandboxServer], tmp_path: Path, world_today: dt.date
) -> Iterator[tuple[Core, SandboxServer, dict[str, str]]]:
    sandbox = make_sandbox(today=world_today)
    database = tmp_path / "sophsync.db"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{database}",
        sophtron_base_url=sandbox.url,
    )
    core = Core.open(settings, migrate=True, poll_interval=0.01, max_poll_interval=0.05)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SOPHSYNC_", "SOPHTRON_"))
    }
    env.update(
        SOPHSYNC_DATA_DIR=str(tmp_path / "data"),
        SOPHSYNC_DATABASE_URL=f"sqlite:///{database}",
        SOPHTRON_BASE_URL=sandbox.url,
        SOPHSYNC_JOB_BACKEND="local",
        SOPHSYNC_JOB_STALL_SECONDS=str(STALL_SECONDS),
    )
    yield core, sandbox, env
    core.close()


#: A launcher for killable workers. Importing the engine costs seconds of CPU on a busy machine,
#: and twenty kills would spend most of the test importing; so one process imports it once and
#: forks a fresh worker (its own database connections, its own threads) for every line it reads,
#: answering with the child's pid. The children are ``sophsync worker`` in all but the command
#: line, and die by ``kill -9`` like any process.
LAUNCHER = """
import os, signal, sys, threading
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue, Worker
from sophsync.settings import Settings

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped at once
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        core = Core.open(Settings.from_env())
        Worker(core, LocalQueue(core), concurrency=2).start()
        threading.Event().wait()
    print(pid, flush=True)
"""


class Launcher:
    """The forking launcher above, as a child process of the test."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.children: list[int] = []
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def worker(self) -> int:
        """Start a worker; its pid."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        pid = int(self.process.stdout.readline())
        self.children.append(pid)
        return pid

    @staticmethod
    def kill(pid: int) -> None:
        """``kill -9`` a worker and wait until it is gone."""
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.01)
        raise AssertionError(f"worker {pid} survived kill -9")

    def close(self) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait(30)
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()
        self.log.close()


class WorkerProcess:
    """``sophsync worker`` itself, run to finish the work and stopped gently."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sophsync", "worker", "--concurrency", "2"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        """Ask it to finish its running jobs and exit (SIGTERM), killing it if it hangs."""
        try:
            stop_processes([self.process])
        finally:
            self.log.close()


def claimed_since(core: Core, since: dt.datetime) -> int:
    """Jobs running now that a worker started after ``since`` claimed or beat for."""
    with core.session() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count(Job.id)).where(
                    Job.state == JobState.DOING.value, Job.heartbeat_at >= since
                )
            )
            or 0
        )


def open_work(core: Core) -> dict[str, int]:
    with core.session() as session:
        jobs = session.execute(
            sa.select(Job.state, sa.func.count(Job.id)).group_by(Job.state)
        ).all()
        running = session.scalar(
            sa.select(sa.func.count(SyncRun.id)).where(SyncRun.status == RunStatus.RUNNING.value)
        )
    found = {state: int(count) for state, count in jobs}
    found["runs running"] = int(running or 0)
    return found


def held_locks(core: Core) -> dict[int, str]:
    with core.session() as session:
        rows = session.execute(
            sa.select(Connection.id, Connection.lock_owner).where(
                Connection.lock_owner.is_not(None)
            )
        ).all()
    return {cid: str(owner) for cid, owner in rows}


def settled(core: Core) -> bool:
    work = open_work(core)
    return (
        not work.get(JobState.TODO.value)
        and not work.get(JobState.DOING.value)
        and not (work["runs running"])
    )


def queue_round(core: Core, ids: list[int]) -> None:
    """Queue a sync of every login, each with a real refresh at the bank (as a daily sync
    long after connecting would do)."""
    with core.session() as session:
        session.execute(sa.update(Connection).values(data_fresh_at=None))
    queue = LocalQueue(core)
    for connection_id in ids:
        defer_sync(queue, connection_id, trigger="scheduled")


def run_to_the_end(core: Core, env: dict[str, str], log: Path, timeout: float = 120.0) -> None:
    """Start a worker and let it work until nothing is left, then stop it gently."""
    worker = WorkerProcess(env, log)
    deadline = time.monotonic() + timeout
    try:
        while not settled(core):
            assert worker.process.poll() is None, f"the worker exited; see {log}"
            assert time.monotonic() < deadline, (
                f"work left after {timeout}s: {open_work(core)}; locks held: {held_locks(core)}"
            )
            time.sleep(0.2)
    finally:
        worker.stop()


def test_killed_worker_leaves_the_store_equal_to_the_truth(
    shared_core: tuple[Core, SandboxServer, dict[str, str]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_property: Callable[[str, Any], None],
) -> None:
    core, sandbox, env = shared_core
    rng = random.Random(SEED)
    log = tmp_path / "worker.log"
    launcher = Launcher(env, log)
    request.addfinalizer(launcher.close)
    actor = families.create_family(core, "The Crashes", "crash@example.com", "correct horse")
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    ids = [connect_login(core, actor, USERNAME.format(n=n)).id for n in range(LOGINS)]

    kills = mid_job = rounds = 0
    while kills < KILLS:
        rounds += 1
        assert rounds <= MAX_ROUNDS, f"only {kills} kills landed in {MAX_ROUNDS} rounds"
        if rounds == 2:  # the world moves on a day: pending rows post, new ones appear
            httpx.post(f"{sandbox.root}/_sandbox/advance", json={"days": 1}, timeout=30)
        queue_round(core, ids)
        round_kills = 0
        while kills < KILLS and round_kills < PER_ROUND and not settled(core):
            started = dt.datetime.now(dt.UTC)
            pid = launcher.worker()
            deadline = time.monotonic() + 30
            while not claimed_since(core, started) and time.monotonic() < deadline:
                if settled(core):
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(*KILL_AFTER))
            mid_job += claimed_since(core, started) > 0
            launcher.kill(pid)
            kills += 1
            round_kills += 1
        run_to_the_end(core, env, log)

    assert kills >= KILLS
    # Most kills must land while a job runs, or the test proves little.
    assert mid_job >= KILLS // 2, (mid_job, kills)
    assert settled(core), open_work(core)
    # A job killed too often may give up (recorded as failed); the next scheduled sync mends
    # that, as it would in production.
    if set(latest_runs(core).values()) != {RunStatus.SUCCEEDED.value}:
        queue_round(core, ids)
        run_to_the_end(core, env, log)
    assert latest_runs(core) == dict.fromkeys(ids, RunStatus.SUCCEEDED.value)
    compared = assert_store_equals_truth(core, sandbox)

    with core.session() as session:
        integrity = session.execute(sa.text("PRAGMA integrity_check")).scalars().all()
        interrupted = session.scalar(
            sa.select(sa.func.count(SyncRun.id)).where(SyncRun.error_code == "interrupted")
        )
        jobs = session.execute(
            sa.select(Job.state, sa.func.count(Job.id)).group_by(Job.state)
        ).all()
    assert integrity == ["ok"]
    assert not any(state == JobState.DOING.value for state, _ in jobs)
    stats = sandbox_stats(sandbox)
    report = {
        "seed": SEED,
        "kills": kills,
        "mid_job": mid_job,
        "rounds": rounds,
        "interrupted_runs": interrupted,
        "jobs": dict(jobs),
        "rows": compared,
        "requests": stats["total"],
    }
    record_property("crash", report)
    print(f"crash consistency: {report}")  # shown with -s: numbers for the docs


class Killed(BaseException):
    """A process dying at this line (nothing after it runs, no handler catches it)."""


def test_a_reaper_killed_between_its_steps_leaves_no_connection_locked(
    make_sandbox: Callable[..., SandboxServer],
    make_core: Callable[..., Core],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kill the random test above can land by chance, made certain: a worker dies after its
    reaper put a dead worker's job back but before it released that job's connection lock.
    Whoever runs the job next must still be able to sync the connection, within minutes, not
    only once the lock expires (``lock_seconds``, 15 minutes by default)."""
    sandbox = make_sandbox()
    core = make_core(sandbox)
    actor = families.create_family(core, "The Reaps", "reap@example.com", "correct horse")
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    view = connect_login(core, actor, "reaped+accounts=2+years=0.1")
    queue = LocalQueue(core, stall_seconds=30)
    defer_sync(queue, view.id)
    job = queue.claim("first-worker/0")
    assert job is not None
    # The first worker dies holding the connection's lock.
    assert sync.acquire_lock(core, view.id, job_owner(job.id))
    clock.advance(seconds=31)

    def die(session: Session, now: dt.datetime, owners: list[str]) -> None:
        raise Killed

    # The second worker's reaper puts the job back, then dies before releasing the lock.
    monkeypatch.setattr(tasks, "release_locks", die)
    with pytest.raises(Killed):
        queue.reap()
    monkeypatch.undo()

    # A third worker carries on, for a few minutes of (fake) time.
    worker = Worker(core, queue)
    for _ in range(10):
        worker.tick()
        worker.run_until_idle()
        clock.advance(seconds=31)
    with core.session() as session:
        runs = session.scalars(sa.select(SyncRun).order_by(SyncRun.id)).all()
        connection = session.get(Connection, view.id)
        assert connection is not None
        lock_owner = connection.lock_owner
        states = session.scalars(sa.select(Job.state)).all()
    assert [run.status for run in runs][-1:] == [RunStatus.SUCCEEDED.value], (
        f"runs {[run.status for run in runs]}, jobs {states}, lock held by {lock_owner}"
    )
    assert lock_owner is None
