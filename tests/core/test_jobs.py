"""The local job backend's own mechanics on both databases: queueing locks, lock exclusivity,
single claims, retries, reaping and the daily schedule. The scenarios every backend must pass
(racing workers, a worker killed mid-sync) are in ``test_job_contract``."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import event, select

from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.jobs import LocalQueue, Worker, defer_sync, pool_size_for, tasks
from sophsync.jobs.local import STALLED_AND_WAITING
from sophsync.sandbox import SandboxServer
from sophsync.store.engine import SQLITE_CONNECTIONS
from sophsync.store.models import Connection, Job, JobState, RunStatus, SyncRun
from tests.core.conftest import Clock, Refusal, advance, connect_and_link

ROOT = Path(__file__).resolve().parents[2]


def jobs(core: Core) -> list[Job]:
    with core.session() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def test_queueing_lock_keeps_one_waiting_job(core: Core) -> None:
    queue = LocalQueue(core)
    first = queue.defer("schedule_syncs", queueing_lock="q")
    assert first is not None
    assert queue.defer("schedule_syncs", queueing_lock="q") is None
    assert queue.defer("schedule_syncs", queueing_lock="other") is not None
    assert len(jobs(core)) == 2


def test_two_defers_at_the_same_moment_keep_one_waiting_job(core: Core) -> None:
    """Two processes (here two threads, each on a connection of its own) defer a job with the
    same queueing lock at once: both look and find none waiting before either writes. The
    database lets one wait; the other defer answers None, as when it finds one waiting."""
    both_looked = threading.Barrier(2, timeout=10)

    def after_looking(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO JOB"):
            both_looked.wait()

    event.listen(core.engine, "before_cursor_execute", after_looking)
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(lambda _: LocalQueue(core).defer("sync", queueing_lock="q"), range(2))
            )
    finally:
        event.remove(core.engine, "before_cursor_execute", after_looking)
    assert sorted(answers, key=lambda answer: answer is None) == [answers[0] or answers[1], None]
    assert [(job.queueing_lock, job.state) for job in jobs(core)] == [("q", JobState.TODO.value)]


def test_a_retry_whose_work_waits_again_ends_and_leaves_the_waiting_job(
    core: Core, clock: Clock
) -> None:
    """A job fails and asks to be retried, but the same work was deferred again while it ran:
    the waiting job does it, and the first ends failed (two may not wait under one lock)."""
    queue = LocalQueue(core)
    first = queue.defer("sync_connection", queueing_lock="sync:1", connection_id=1)
    assert first is not None
    assert queue.claim("w") is not None
    second = queue.defer("sync_connection", queueing_lock="sync:1", connection_id=1)
    assert second is not None  # the first is running, not waiting
    queue.finish(first, worker="w", error="rate limited", retry_in=60)
    ended, waiting = jobs(core)
    assert (ended.id, ended.state, ended.finished_at) == (first, JobState.FAILED.value, clock.now)
    assert ended.last_error is not None
    assert ended.last_error.startswith("rate limited (not retried")
    assert (waiting.id, waiting.state) == (second, JobState.TODO.value)
    clock.advance(seconds=61)
    assert [job.id for job in queue.claim_many("w", 5)] == [second]


def test_a_retry_raced_by_a_defer_ends_and_leaves_the_waiting_job(core: Core) -> None:
    """The same, when the other job is deferred after the retry looked for it and before it
    wrote: the database refuses the second waiting job, and the retry ends failed instead."""
    queue = LocalQueue(core)
    first = queue.defer("sync_connection", queueing_lock="sync:1", connection_id=1)
    assert first is not None
    assert queue.claim("w") is not None
    deferred: list[int | None] = []

    def defer_in_between(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not deferred and statement.lstrip().upper().startswith("UPDATE JOB SET STATE"):
            deferred.append(
                LocalQueue(core).defer("sync_connection", queueing_lock="sync:1", connection_id=1)
            )

    event.listen(core.engine, "before_cursor_execute", defer_in_between)
    try:
        queue.finish(first, worker="w", error="rate limited", retry_in=60)
    finally:
        event.remove(core.engine, "before_cursor_execute", defer_in_between)
    ended, waiting = jobs(core)
    assert (ended.id, ended.state) == (first, JobState.FAILED.value)
    assert (waiting.id, waiting.state) == (deferred[0], JobState.TODO.value)


def test_a_stalled_job_whose_work_waits_again_ends_when_reaped(core: Core, clock: Clock) -> None:
    queue = LocalQueue(core, stall_seconds=30)
    first = queue.defer("sync_connection", queueing_lock="sync:1", connection_id=1)
    other = queue.defer("sync_connection", queueing_lock="sync:2", connection_id=2)
    assert len(queue.claim_many("dead", 5)) == 2
    second = queue.defer("sync_connection", queueing_lock="sync:1", connection_id=1)
    clock.advance(seconds=31)
    assert queue.reap() == 2
    states = {job.id: (job.state, job.last_error) for job in jobs(core)}
    assert states == {
        first: (JobState.FAILED.value, STALLED_AND_WAITING),
        other: (JobState.TODO.value, None),
        second: (JobState.TODO.value, None),
    }


def test_jobs_sharing_a_lock_never_run_together(core: Core) -> None:
    queue = LocalQueue(core)
    a = queue.defer("schedule_syncs", lock="L")
    b = queue.defer("schedule_syncs", lock="L")
    c = queue.defer("schedule_syncs", lock="M")
    first = queue.claim("w1")
    assert first is not None
    assert first.id == a
    second = queue.claim("w2")
    assert second is not None
    assert second.id == c  # b waits: its lock is held by a
    assert queue.claim("w3") is None
    queue.finish(first.id, result="ok")
    third = queue.claim("w3")
    assert third is not None
    assert third.id == b


def test_a_job_is_claimed_by_one_worker_only(core: Core) -> None:
    queue = LocalQueue(core)
    ids = {queue.defer("schedule_syncs") for _ in range(20)}
    claimed: list[int] = []
    guard = threading.Lock()

    def take(name: str) -> None:
        while (job := queue.claim(name)) is not None:
            with guard:
                claimed.append(job.id)

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)


def test_retry_runs_again_later_and_failure_is_recorded(core: Core, clock: Clock) -> None:
    queue = LocalQueue(core)
    job_id = queue.defer("schedule_syncs")
    assert job_id is not None
    job = queue.claim("w")
    assert job is not None
    queue.finish(job.id, error="busy", retry_in=60)
    assert queue.claim("w") is None  # not due yet
    clock.advance(seconds=61)
    again = queue.claim("w")
    assert again is not None
    assert again.attempts == 2
    queue.finish(again.id, error="broken for good")
    assert jobs(core)[0].state == JobState.FAILED.value
    assert jobs(core)[0].last_error == "broken for good"


def test_reaper_puts_back_a_dead_workers_job_and_releases_its_lock(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="reaped")
    queue = LocalQueue(core, stall_seconds=30)
    defer_sync(queue, view.id)
    job = queue.claim("doomed")
    assert job is not None
    # The dead worker held the connection's sync lock.
    from sophsync.core import sync
    from sophsync.jobs.local import job_owner

    assert sync.acquire_lock(core, view.id, job_owner(job.id))
    clock.advance(seconds=31)
    assert queue.reap() == 1
    assert jobs(core)[0].state == JobState.TODO.value
    Worker(core, queue).run_until_idle()
    with core.session() as session:
        runs = session.scalars(select(SyncRun)).all()
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED.value]


def test_a_sync_job_whose_end_the_database_refused_finishes_at_its_retry(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    """The database refused the sync's last writes: the job failed holding the connection's
    lock. Its retry takes the lock back instead of waiting for it to expire (15 minutes)."""
    view = connect_and_link(core, admin, username="refused-job")
    advance(engine_sandbox, clock, 1)
    queue = LocalQueue(core)
    defer_sync(queue, view.id)
    with Refusal(core, "sync_run", "connection") as refusal:
        Worker(core, queue).run_until_idle()
    assert refusal.refused == 2
    job = jobs(core)[0]
    assert job.state == JobState.TODO.value
    assert job.last_error is not None
    assert "too many clients already" in job.last_error

    clock.advance(seconds=61)  # the first retry's back-off: 30 s x 2
    Worker(core, queue).run_until_idle()
    assert jobs(core)[0].state == JobState.DONE.value
    with core.session() as session:
        runs = session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
        held = session.get(Connection, view.id)
        assert held is not None
        assert held.lock_owner is None
    assert [(run.status, run.error_code) for run in runs] == [
        (RunStatus.FAILED.value, "interrupted"),
        (RunStatus.SUCCEEDED.value, None),
    ]


def test_daily_schedule_defers_each_due_connection_once(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="scheduled")
    queue = LocalQueue(core)
    worker = Worker(core, queue)
    worker.run_until_idle()
    # Connected, never synced: due. Two workers ticking in the same hour defer one schedule job.
    worker.tick()
    Worker(core, queue).tick()
    assert [j.task for j in jobs(core)] == ["schedule_syncs"]
    worker.run_until_idle()
    assert [j.task for j in jobs(core)] == ["schedule_syncs", "sync_connection"]
    assert all(j.state == JobState.DONE.value for j in jobs(core))
    with core.session() as session:
        run = session.scalars(select(SyncRun)).one()
    assert run.trigger == "scheduled"
    assert run.connection_id == view.id
    # Synced after today's sync time: nothing is due until tomorrow's.
    assert tasks.due_connections(core, core.now()) == []
    advance(engine_sandbox, clock, 1)
    assert tasks.due_connections(core, core.now()) == [view.id]


def test_poll_task_follows_a_login_with_growing_intervals(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    from sophsync.core import connect
    from sophsync.jobs import defer_poll
    from sophsync.store.models import ConnectionStatus

    start = connect.start_connection(
        core, admin, "926623ca-5952-4921-8f77-2023f1cdde8e", "polled+never-finishes", "pw"
    )
    queue = LocalQueue(core)
    worker = Worker(core, queue)
    defer_poll(queue, start.id)
    delays = []
    for _ in range(3):
        pending = [j for j in jobs(core) if j.state == JobState.TODO.value]
        assert len(pending) == 1
        delays.append((pending[0].run_at - core.now()).total_seconds())
        worker.run_until_idle()  # not due yet: nothing runs
        assert [j.id for j in jobs(core) if j.state == JobState.TODO.value] == [pending[0].id]
        clock.advance(seconds=delays[-1] + 0.1)
        worker.run_until_idle()
    assert delays == sorted(delays)
    assert delays[0] < delays[-1]
    view = connect.get_connection(core, admin, start.id)
    assert view.status is ConnectionStatus.CONNECTING


def test_answering_mfa_during_a_sync_resumes_it_through_the_queue(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    from sophsync.core import connect, sync
    from sophsync.jobs import defer_poll
    from sophsync.store.models import ConnectionStatus

    view = connect_and_link(
        core, admin, name="Sophtron Bank SecurityQuestion", username="resume+mfa-again"
    )
    queue = LocalQueue(core)
    worker = Worker(core, queue)
    assert sync.sync_connection(core, view.id).status is RunStatus.SUCCEEDED
    advance(engine_sandbox, clock, 2)
    defer_sync(queue, view.id)
    worker.run_until_idle()
    waiting = connect.get_connection(core, admin, view.id)
    assert waiting.status is ConnectionStatus.REQUIRES_UPDATE
    assert waiting.prompt is not None
    connect.answer_challenge(core, admin, view.id, ["blue"])
    defer_poll(queue, view.id)
    clock.advance(seconds=5)
    worker.run_until_idle()  # the poll sees the job succeed and queues the sync again
    clock.advance(seconds=1)
    worker.run_until_idle()
    with core.session() as session:
        statuses = [r.status for r in session.scalars(select(SyncRun).order_by(SyncRun.id))]
    assert statuses == [
        RunStatus.SUCCEEDED.value,
        RunStatus.NEEDS_INPUT.value,
        RunStatus.SUCCEEDED.value,
    ]
    assert connect.get_connection(core, admin, view.id).status is ConnectionStatus.CONNECTED
    tasks_run = [j.task for j in jobs(core)]
    assert tasks_run == ["sync_connection", "poll_connection", "sync_connection"]


def test_claim_many_takes_due_jobs_oldest_first_one_per_lock(core: Core, clock: Clock) -> None:
    queue = LocalQueue(core)
    a = queue.defer("schedule_syncs", lock="L")
    b = queue.defer("schedule_syncs", lock="L")
    c = queue.defer("schedule_syncs")
    d = queue.defer("schedule_syncs", lock="M")
    later = queue.defer("schedule_syncs", delay=60)
    taken = queue.claim_many("w1", 10)
    assert [job.id for job in taken] == [a, c, d]  # b shares a's lock; `later` is not due
    assert {job.worker for job in taken} == {"w1"}
    assert {job.state for job in taken} == {JobState.DOING.value}
    assert queue.claim_many("w2", 10) == []
    queue.finish(a, worker="w1", result="ok")
    assert [job.id for job in queue.claim_many("w2", 1)] == [b]
    clock.advance(seconds=61)
    assert [job.id for job in queue.claim_many("w2", 5)] == [later]


def test_a_job_taken_back_by_the_reaper_is_not_finished_by_its_first_worker(
    core: Core, clock: Clock
) -> None:
    queue = LocalQueue(core, stall_seconds=30)
    job_id = queue.defer("schedule_syncs")
    first = queue.claim("slow")
    assert first is not None
    assert first.id == job_id
    clock.advance(seconds=31)  # "slow" stopped beating: it looks dead
    assert queue.reap() == 1
    second = queue.claim("fresh")
    assert second is not None
    assert second.id == job_id
    queue.finish(job_id, worker="slow", error="late", retry_in=60)  # ignored
    [row] = jobs(core)
    assert (row.state, row.worker, row.last_error) == (JobState.DOING.value, "fresh", None)
    queue.finish(job_id, worker="fresh", result="ok")
    assert jobs(core)[0].state == JobState.DONE.value


def test_a_job_taken_back_while_its_end_is_written_stays_with_its_new_holder(
    core: Core, clock: Clock
) -> None:
    """A finish reads who holds the job, then writes its end. A reaper and a second worker
    that take the job in between (here: when the finish looks at the clock) keep it: the
    write holds only while the holder and state are those that were read."""
    queue = LocalQueue(core, stall_seconds=30)
    job_id = queue.defer("schedule_syncs")
    assert queue.claim("slow") is not None
    clock.advance(seconds=31)  # "slow" stopped beating: it looks dead
    taken_back: list[int] = []

    def take_back_then_tell_the_time() -> dt.datetime:
        if not taken_back:  # once: the reaper and the claim ask the clock too
            taken_back.append(0)
            taken_back[0] = queue.reap()
            assert queue.claim("fresh") is not None
        return clock()

    core.clock = take_back_then_tell_the_time
    try:
        queue.finish(job_id, worker="slow", result="ok")
    finally:
        core.clock = clock
    assert taken_back == [1]
    [row] = jobs(core)
    assert (row.state, row.worker, row.last_error) == (JobState.DOING.value, "fresh", None)


def test_a_worker_runs_as_many_jobs_at_once_as_its_concurrency(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    """One dispatcher fills every free slot: the worker's daily schedule queues a sync of five
    logins whose bank refresh takes 0.6 s; they run three at a time, never more, and all end."""
    clock.follow_real_time()
    views = [connect_and_link(core, admin, username=f"par{i}+job-seconds=0.3") for i in range(5)]
    advance(engine_sandbox, clock, 1)
    queue = LocalQueue(core)
    worker = Worker(core, queue, concurrency=3, idle_seconds=0.05)

    def syncs() -> list[Job]:
        return [job for job in jobs(core) if job.task == "sync_connection"]

    threads = worker.start()
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen.append(worker.running)
            if len(syncs()) == 5 and all(job.state == JobState.DONE.value for job in syncs()):
                break
            time.sleep(0.005)
    finally:
        worker.stop(threads)
    assert max(seen) == 3
    assert [job.state for job in syncs()] == [JobState.DONE.value] * 5
    with core.session() as session:
        runs = session.scalars(select(SyncRun)).all()
    assert sorted(run.connection_id for run in runs) == sorted(view.id for view in views)
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED.value}


def test_a_busy_worker_does_not_take_its_own_running_job_for_dead(core: Core, clock: Clock) -> None:
    """Its heartbeat may be late (waiting for the database); its own reaper leaves the job
    alone, another worker's reaper does not, and the late beat then changes nothing."""
    queue = LocalQueue(core, stall_seconds=30)
    mine = Worker(core, queue, name="busy")
    job_id = queue.defer("schedule_syncs")
    job = queue.claim("busy")
    assert job is not None
    mine._hold(job)  # running on one of its threads
    clock.advance(seconds=31)
    mine.tick()
    assert jobs(core)[0].state == JobState.DOING.value
    assert Worker(core, queue, name="other").queue.reap() == 1
    assert jobs(core)[0].state == JobState.TODO.value
    queue.heartbeat([job_id], "busy")  # the late beat
    [row] = jobs(core)
    assert (row.state, row.worker) == (JobState.TODO.value, None)


def test_a_busy_worker_on_sqlite_keeps_a_few_connections_and_postgresql_one_per_job(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock, backend: str
) -> None:
    """A worker running 30 syncs at once (its daily schedule's): every sync succeeds. SQLite
    lets one connection write at a time, so the worker keeps a small pool (SQLITE_CONNECTIONS,
    opened once), not a connection per job; PostgreSQL gets one per job."""
    clock.follow_real_time()
    views = [connect_and_link(core, admin, username=f"many{i}+job-seconds=0.2") for i in range(30)]
    advance(engine_sandbox, clock, 1)
    before = max((run.id for run in finished_runs(core)), default=0)
    worker_core = Core.open(core.settings, clock=clock, pool_size=pool_size_for(30))
    opened: list[object] = []
    out = 0
    most_out = 0

    def checkout(*_: object) -> None:
        nonlocal out, most_out
        out += 1
        most_out = max(most_out, out)

    def checkin(*_: object) -> None:
        nonlocal out
        out -= 1

    event.listen(worker_core.engine, "connect", lambda *_: opened.append(True))
    event.listen(worker_core.engine, "checkout", checkout)
    event.listen(worker_core.engine, "checkin", checkin)
    try:
        # The worker's daily schedule queues a sync of each login: all are due.
        worker = Worker(worker_core, LocalQueue(worker_core), concurrency=30, idle_seconds=0.05)
        threads = worker.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(finished_runs(core, before)) < 30:
                time.sleep(0.05)
        finally:
            worker.stop(threads)
        if backend == "sqlite":
            assert len(opened) <= SQLITE_CONNECTIONS
            assert most_out <= SQLITE_CONNECTIONS
        else:
            assert worker_core.engine.pool.size() == 35  # type: ignore[attr-defined]
            assert most_out > SQLITE_CONNECTIONS  # the syncs did run at once
    finally:
        worker_core.close()
    runs = finished_runs(core, before)
    assert sorted(run.connection_id for run in runs) == sorted(view.id for view in views)
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED.value}


def finished_runs(core: Core, after: int = 0) -> list[SyncRun]:
    """The sync runs that have ended, newer than the run ``after``."""
    with core.session() as session:
        return list(
            session.scalars(
                select(SyncRun).where(SyncRun.id > after, SyncRun.status != RunStatus.RUNNING.value)
            )
        )


def _holding_a_turn(core: Core) -> tuple[threading.Event, threading.Thread]:
    """A thread taking turns, inside a database block (with another nested in it) until the
    event returned is set."""
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with core.taking_turns(), core.connection(), core.session(), core.autocommit():
            entered.set()
            leave.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)
    return leave, holder


def test_threads_taking_turns_run_their_database_blocks_one_at_a_time(core: Core) -> None:
    """On SQLite, a block of a thread taking turns waits while another such thread is in one;
    a thread not taking turns (a web request's) does not wait, nor does anyone on PostgreSQL."""
    sqlite = core.engine.dialect.name == "sqlite"
    leave, holder = _holding_a_turn(core)
    inside: list[str] = []

    def read(name: str, *, in_turns: bool) -> threading.Thread:
        def run() -> None:
            turns = core.taking_turns() if in_turns else contextlib.nullcontext()
            with turns, core.autocommit() as connection:
                connection.execute(select(Job.id)).all()
                inside.append(name)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    waiting = read("taking turns", in_turns=True)
    read("not taking turns", in_turns=False).join(10)
    waiting.join(0.3)
    expected = ["not taking turns"] if sqlite else ["not taking turns", "taking turns"]
    assert sorted(inside) == expected
    leave.set()
    holder.join(10)
    waiting.join(10)
    assert sorted(inside) == ["not taking turns", "taking turns"]


def test_a_workers_jobs_take_turns_at_the_database(core: Core) -> None:
    """A worker's job runs its database blocks in turns with the process's other threads that
    take turns (on SQLite)."""
    sqlite = core.engine.dialect.name == "sqlite"
    queue = LocalQueue(core)
    leave, holder = _holding_a_turn(core)
    job_id = queue.defer("schedule_syncs", lock="turns")
    runner = threading.Thread(target=Worker(core, queue).run_until_idle)
    runner.start()
    runner.join(0.3)
    assert runner.is_alive() is sqlite  # on SQLite, waiting for its turn
    leave.set()
    holder.join(10)
    runner.join(30)
    assert not runner.is_alive()
    with core.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.state == JobState.DONE.value
