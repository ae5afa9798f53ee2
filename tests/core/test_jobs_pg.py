"""The procrastinate job backend on PostgreSQL: the same tasks as the local backend, run by
``sophsync worker`` processes; queueing locks, per-login locks, retries, and recovery from a
worker killed with SIGKILL in the middle of a sync."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from procrastinate.jobs import Job as ProcrastinateJob
from sqlalchemy import func, select

from sophsync.core import credentials, families
from sophsync.core.app import Core
from sophsync.jobs import create_queue, defer_sync, tasks
from sophsync.jobs.pg import MAX_ATTEMPTS, ProcrastinateQueue, _Retry
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store.models import Base, Connection, RunStatus, SyncRun, Transaction
from tests.conftest import ACCESS_KEY, USER_ID
from tests.core.conftest import Clock, connect_and_link, truth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_core(
    postgres_url: str, tmp_path: Path, clock: Clock, make_sandbox: Callable[..., SandboxServer]
) -> Iterator[Callable[..., tuple[Core, SandboxServer]]]:
    """A Core on PostgreSQL with the procrastinate backend, its tables emptied first."""
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    cores: list[Core] = []

    def build(**sandbox_options: object) -> tuple[Core, SandboxServer]:
        sandbox = make_sandbox(**sandbox_options)
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=postgres_url,
            job_backend="procrastinate",
            sophtron_base_url=sandbox.url,
            job_stall_seconds=2,
        )
        core = Core.open(
            settings, migrate=True, clock=clock, poll_interval=0.01, max_poll_interval=0.05
        )
        queue = ProcrastinateQueue(core).open()
        queue.apply_schema()
        with psycopg.connect(postgres_url, autocommit=True) as raw:
            raw.execute(
                "TRUNCATE procrastinate_jobs, procrastinate_periodic_defers, "
                "procrastinate_workers CASCADE"
            )
        queue.close()
        cores.append(core)
        families_admin = families.create_family(core, "PG", "pg@example.com", "a long password")
        credentials.save_credentials(core, families_admin, USER_ID, ACCESS_KEY)
        return core, sandbox

    yield build
    for core in cores:
        core.close()


def admin_of(core: Core) -> families.Actor:
    return families.family_admin(core, 1)


def runs(core: Core) -> list[SyncRun]:
    with core.session() as session:
        return list(session.scalars(select(SyncRun).order_by(SyncRun.id)))


def worker_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "sophsync", "worker", "--concurrency", "1", *extra]


def worker_env(core: Core) -> dict[str, str]:
    return {
        **os.environ,
        "SOPHSYNC_DATABASE_URL": core.settings.url,
        "SOPHSYNC_DATA_DIR": str(core.settings.data_dir),
        "SOPHSYNC_JOB_BACKEND": "procrastinate",
        "SOPHSYNC_JOB_STALL_SECONDS": "2",
    }


def test_the_configured_backend_is_procrastinate_on_postgresql(
    pg_core: Callable[..., tuple[Core, SandboxServer]],
) -> None:
    core, _ = pg_core()
    assert core.settings.jobs == "procrastinate"
    queue = create_queue(core)
    assert isinstance(queue, ProcrastinateQueue)
    queue.close()


def test_queueing_lock_refuses_a_second_sync_and_a_worker_runs_it(
    pg_core: Callable[..., tuple[Core, SandboxServer]],
) -> None:
    core, _ = pg_core()
    view = connect_and_link(core, admin_of(core), username="pg-basic")
    queue = ProcrastinateQueue(core).open()
    try:
        assert defer_sync(queue, view.id) is not None
        assert defer_sync(queue, view.id) is None
    finally:
        queue.close()
    ProcrastinateQueue(core).run_worker(wait=False)
    assert [(run.status, run.trigger) for run in runs(core)] == [
        (RunStatus.SUCCEEDED.value, "manual")
    ]
    assert runs(core)[0].added > 0


def test_retry_strategy_honours_the_delay_a_task_asks_for() -> None:
    strategy = _Retry()
    job = ProcrastinateJob(
        id=1,
        queue="default",
        lock=None,
        queueing_lock=None,
        task_name="sophsync.sync_connection",
        attempts=0,
    )
    decision = strategy.get_retry_decision(exception=tasks.Retry(42, "busy"), job=job)
    assert decision is not None
    assert decision.retry_at is not None
    wait = (decision.retry_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert 40 <= wait <= 43
    last = ProcrastinateJob(
        id=1,
        queue="default",
        lock=None,
        queueing_lock=None,
        task_name="sophsync.sync_connection",
        attempts=MAX_ATTEMPTS,
    )
    assert strategy.get_retry_decision(exception=tasks.Retry(1, "busy"), job=last) is None


def test_jobs_for_one_login_never_overlap_across_worker_processes(
    pg_core: Callable[..., tuple[Core, SandboxServer]],
    clock: Clock,
) -> None:
    clock.now = dt.datetime.now(dt.UTC)
    core, _ = pg_core(job_seconds=0.3, today=clock.now.date())
    view = connect_and_link(core, admin_of(core), username="pg-race+daily=3")
    with core.session() as session:  # old data: each sync refreshes (and takes a while)
        session.get(Connection, view.id).data_fresh_at -= dt.timedelta(hours=1)  # type: ignore[union-attr]
    queue = ProcrastinateQueue(core).open()
    try:
        for _ in range(2):
            queue.defer("sync_connection", lock=tasks.sync_lock(view.id), connection_id=view.id)
    finally:
        queue.close()
    workers = [
        subprocess.Popen(
            worker_command(),
            env=worker_env(core),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
            len(runs(core)) == 2 and all(run.finished_at for run in runs(core))
        ):
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    done = runs(core)
    assert [run.status for run in done] == [RunStatus.SUCCEEDED.value] * 2
    for earlier, later in itertools.pairwise(done):
        assert earlier.finished_at is not None
        assert earlier.finished_at <= later.started_at
    with core.session() as session:
        duplicates = session.execute(
            select(Transaction.provider_id, func.count())
            .group_by(Transaction.account_id, Transaction.provider_id)
            .having(func.count() > 1)
        ).all()
    assert duplicates == []


def test_worker_killed_mid_sync_is_recovered(
    pg_core: Callable[..., tuple[Core, SandboxServer]],
    clock: Clock,
) -> None:
    clock.now = dt.datetime.now(dt.UTC)
    core, sandbox = pg_core(job_seconds=1.0, today=clock.now.date())
    view = connect_and_link(core, admin_of(core), username="pg-killed+daily=4")
    with core.session() as session:
        session.get(Connection, view.id).data_fresh_at -= dt.timedelta(hours=1)  # type: ignore[union-attr]
    queue = ProcrastinateQueue(core).open()
    try:
        defer_sync(queue, view.id)
    finally:
        queue.close()
    worker = subprocess.Popen(
        worker_command(),
        env=worker_env(core),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not runs(core):
        time.sleep(0.05)
    time.sleep(1.2)  # the refresh is in flight
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert len(runs(core)) == 1
    assert runs(core)[0].status == RunStatus.RUNNING.value
    time.sleep(2.5)  # past the stall timeout
    assert ProcrastinateQueue(core).reap() == 1
    assert runs(core)[0].status == RunStatus.FAILED.value
    assert runs(core)[0].error_code == "interrupted"
    finished = subprocess.run(
        worker_command("--burst"),
        env=worker_env(core),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert runs(core)[-1].status == RunStatus.SUCCEEDED.value
    with core.session() as session:
        local = {
            (row.provider_id, row.amount_minor, row.pending)
            for row in session.scalars(select(Transaction).where(Transaction.status == "active"))
        }
    expected = {
        (t["TransactionID"], round(t["Amount"] * 100), t["Status"] == "Pending")
        for account in truth(sandbox)["Logins"][0]["Accounts"]
        for t in account["Transactions"]
    }
    assert local == expected
