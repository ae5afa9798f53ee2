"""The local job backend on both databases: queueing, locks, retries, reaping, scheduling,
two workers racing, and a worker killed with SIGKILL in the middle of a sync."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.jobs import LocalQueue, Worker, defer_sync, tasks
from sophsync.sandbox import SandboxServer
from sophsync.store.models import Connection, Job, JobState, RunStatus, SyncRun, Transaction
from tests.core.conftest import Clock, advance, connect_and_link, truth

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


def test_two_workers_racing_for_one_connection(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="racing+daily=5")
    advance(engine_sandbox, clock, 3)
    queue = LocalQueue(core)
    # Two jobs for the same connection (as two schedulers could create them).
    queue.defer("sync_connection", lock=tasks.sync_lock(view.id), connection_id=view.id)
    queue.defer("sync_connection", lock=tasks.sync_lock(view.id), connection_id=view.id)
    workers = [Worker(core, queue, concurrency=2, idle_seconds=0.05) for _ in range(2)]
    threads = [worker.start() for worker in workers]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        j.state in {JobState.TODO.value, JobState.DOING.value} for j in jobs(core)
    ):
        time.sleep(0.05)
    for worker, started in zip(workers, threads, strict=True):
        worker.stop(started)
    with core.session() as session:
        runs = session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
        duplicates = session.execute(
            select(Transaction.provider_id, func.count())
            .group_by(Transaction.account_id, Transaction.provider_id)
            .having(func.count() > 1)
        ).all()
    # Both queued syncs ran (a worker may also have added the daily one), and none overlapped.
    assert len(runs) >= 2
    assert all(run.status == RunStatus.SUCCEEDED.value for run in runs)
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None
        assert earlier.finished_at <= later.started_at
    assert duplicates == []


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_worker_killed_mid_sync_loses_and_duplicates_nothing(
    make_sandbox: Callable[..., SandboxServer],
    make_core: Callable[..., Core],
    backend: str,
    tmp_path: Path,
    clock: Clock,
) -> None:
    # The worker runs in another process on the real clock: so does everything here. Job steps
    # take 1 s at the sandbox, so a refresh is in flight when the worker dies.
    clock.now = dt.datetime.now(dt.UTC)
    sandbox = make_sandbox(job_seconds=1.0, today=clock.now.date())
    core = make_core(sandbox)
    from sophsync.core import credentials, families
    from tests.conftest import ACCESS_KEY, USER_ID

    admin = families.create_family(core, "Killed", "killed@example.com", "a long password")
    credentials.save_credentials(core, admin, USER_ID, ACCESS_KEY)
    view = connect_and_link(core, admin, username="killed+daily=4")
    with core.session() as session:  # the connect job's data is old: the sync must refresh
        session.get(Connection, view.id).data_fresh_at -= dt.timedelta(hours=1)  # type: ignore[union-attr]
    queue = LocalQueue(core, stall_seconds=1)
    defer_sync(queue, view.id)
    env = {
        **os.environ,
        "SOPHSYNC_DATABASE_URL": core.settings.url,
        "SOPHSYNC_DATA_DIR": str(core.settings.data_dir),
        "SOPHTRON_BASE_URL": sandbox.url,
        "SOPHSYNC_JOB_BACKEND": "local",
    }
    command = [sys.executable, "-m", "sophsync", "worker", "--concurrency", "1"]
    worker = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Kill it once its sync run has started and the refresh is in flight.
    _wait_for(lambda: any(j.state == JobState.DOING.value for j in jobs(core)))
    time.sleep(1.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    with core.session() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 1
    # Any process may reap: the dead worker's job goes back to the queue, its lock is freed and
    # its run is closed. A new worker then finishes the work.
    time.sleep(1.1)
    clock.now = dt.datetime.now(dt.UTC)
    assert queue.reap() == 1
    restarted = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(
            lambda: bool(jobs(core)) and all(j.state == JobState.DONE.value for j in jobs(core)),
            timeout=90,
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)
    with core.session() as session:
        runs = session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
        local = {
            (row.provider_id, row.amount_minor, row.pending)
            for row in session.scalars(select(Transaction).where(Transaction.status == "active"))
        }
        total = session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.status == "active")
        )
    assert runs[0].status == RunStatus.FAILED.value
    assert runs[0].error_code == "interrupted"
    assert runs[-1].status == RunStatus.SUCCEEDED.value
    expected = {
        (t["TransactionID"], round(t["Amount"] * 100), t["Status"] == "Pending")
        for account in truth(sandbox)["Logins"][0]["Accounts"]
        for t in account["Transactions"]
    }
    assert local == expected
    assert total == len(expected)
