"""One contract, every job backend: the local backend on SQLite and on PostgreSQL, and
procrastinate on PostgreSQL, each driven through real ``sophsync worker`` processes.

A duplicate sync is refused while one waits; a worker runs a sync to the end; two workers racing
for one login never overlap and duplicate nothing; a worker killed with SIGKILL in the middle of
a refresh is reaped and another finishes its work, losing and duplicating nothing; a run left
open past its lock is closed by the reaper.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from sophsync.core import credentials, families, sync
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue, Queue, create_queue, defer_sync, tasks
from sophsync.jobs.pg import ProcrastinateQueue
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store.models import Connection, RunStatus, SyncRun, Transaction
from tests.conftest import ACCESS_KEY, USER_ID, stop_processes, wait_until
from tests.core.conftest import Clock, connect_and_link, local_copy, sandbox_copy

ROOT = Path(__file__).resolve().parents[2]
STALL_SECONDS = 2


@dataclass
class Setup:
    core: Core
    sandbox: SandboxServer
    backend: str

    def queue(self) -> Queue:
        return create_queue(self.core)

    def close(self, queue: Queue) -> None:
        if isinstance(queue, ProcrastinateQueue):
            queue.close()

    def reap(self) -> int:
        if self.backend == "procrastinate":
            return ProcrastinateQueue(self.core).reap()
        return LocalQueue(self.core).reap()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SOPHSYNC_DATABASE_URL": self.core.settings.url,
            "SOPHSYNC_DATA_DIR": str(self.core.settings.data_dir),
            "SOPHSYNC_JOB_BACKEND": self.backend,
            "SOPHSYNC_JOB_STALL_SECONDS": str(STALL_SECONDS),
        }

    def worker(self, *extra: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "sophsync", "worker", "--concurrency", "1", *extra]
        return subprocess.Popen(
            command, env=self.env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def runs(self) -> list[SyncRun]:
        with self.core.session() as session:
            return list(session.scalars(select(SyncRun).order_by(SyncRun.id)))

    def connect_stale(self, username: str) -> int:
        """A linked login whose data is an hour old: its next sync refreshes."""
        admin = families.family_admin(self.core, 1)
        view = connect_and_link(self.core, admin, username=username)
        with self.core.session() as session:
            connection = session.get(Connection, view.id)
            assert connection is not None
            assert connection.data_fresh_at is not None
            connection.data_fresh_at -= dt.timedelta(hours=1)
        return view.id


@pytest.fixture(params=["local-sqlite", "local-postgresql", "procrastinate"])
def setup(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: Clock,
    make_sandbox: Callable[..., SandboxServer],
) -> Iterator[Setup]:
    backend = "procrastinate" if request.param == "procrastinate" else "local"
    if request.param == "local-sqlite":
        url = f"sqlite:///{tmp_path / 'sophsync.db'}"
    else:
        url = request.getfixturevalue("database_url_postgresql")
    # Workers run in other processes on the real clock: so does everything here.
    clock.now = dt.datetime.now(dt.UTC)
    sandbox = make_sandbox(job_seconds=1.0, today=clock.now.date())
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        job_backend=backend,
        sophtron_base_url=sandbox.url,
        job_stall_seconds=STALL_SECONDS,
    )
    core = Core.open(
        settings, migrate=True, clock=clock, poll_interval=0.01, max_poll_interval=0.05
    )
    if backend == "procrastinate":
        queue = ProcrastinateQueue(core).open()
        queue.apply_schema()
        queue.close()
        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute(
                "TRUNCATE procrastinate_jobs, procrastinate_periodic_defers, "
                "procrastinate_workers CASCADE"
            )
    admin = families.create_family(core, "Contract", "contract@example.com", "a long password")
    credentials.save_credentials(core, admin, USER_ID, ACCESS_KEY)
    yield Setup(core, sandbox, backend)
    core.close()


@pytest.fixture
def database_url_postgresql(postgres_url: str) -> str:
    """The session's PostgreSQL database, emptied."""
    import sqlalchemy as sa

    from sophsync.store.models import Base

    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_url


#: How long the contract waits for a worker to get somewhere.
WAIT_SECONDS = 90


def test_a_duplicate_sync_is_refused_and_a_worker_runs_it(setup: Setup) -> None:
    connection_id = setup.connect_stale("contract-basic")
    queue = setup.queue()
    try:
        assert defer_sync(queue, connection_id) is not None
        assert defer_sync(queue, connection_id) is None
    finally:
        setup.close(queue)
    worker = setup.worker()
    try:
        wait_until(lambda: any(run.finished_at for run in setup.runs()), seconds=WAIT_SECONDS)
    finally:
        stop_processes([worker])
    assert [run.status for run in setup.runs()][:1] == [RunStatus.SUCCEEDED.value]
    assert local_copy(setup.core) == sandbox_copy(setup.sandbox)


@pytest.mark.parametrize("setup", ["local-sqlite", "local-postgresql"], indirect=True)
def test_a_stopping_worker_waits_for_its_sync_and_a_second_signal_stops_it_at_once(
    setup: Setup,
) -> None:
    connection_id = setup.connect_stale("contract-stop")
    state = setup.sandbox.app.state
    state.config = dataclasses.replace(state.config, job_seconds=60.0)  # the refresh hangs on
    defer_sync(setup.queue(), connection_id)
    worker = setup.worker()
    try:
        wait_until(lambda: bool(setup.runs()), seconds=WAIT_SECONDS)
        worker.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=3)  # still finishing its sync
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=20) != 0  # well before the sync or the 30 s grace ends
    finally:
        worker.kill()
        worker.wait()
    assert [run.status for run in setup.runs()] == [RunStatus.RUNNING.value]


def test_two_workers_racing_for_one_login(setup: Setup) -> None:
    connection_id = setup.connect_stale("contract-race+daily=3")
    queue = setup.queue()
    try:
        for _ in range(2):  # as two schedulers could: no queueing lock, the same login lock
            queue.defer(
                "sync_connection", lock=tasks.sync_lock(connection_id), connection_id=connection_id
            )
    finally:
        setup.close(queue)
    workers = [setup.worker(), setup.worker()]
    try:
        wait_until(
            lambda: len([r for r in setup.runs() if r.finished_at]) >= 2, seconds=WAIT_SECONDS
        )
    finally:
        stop_processes(workers)
    runs = setup.runs()
    assert all(run.status == RunStatus.SUCCEEDED.value for run in runs)
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None
        assert earlier.finished_at <= later.started_at
    with setup.core.session() as session:
        duplicates = session.execute(
            select(Transaction.provider_id, func.count())
            .group_by(Transaction.account_id, Transaction.provider_id)
            .having(func.count() > 1)
        ).all()
    assert duplicates == []


def test_a_worker_killed_mid_sync_loses_and_duplicates_nothing(setup: Setup) -> None:
    connection_id = setup.connect_stale("contract-killed+daily=4")
    queue = setup.queue()
    try:
        defer_sync(queue, connection_id)
    finally:
        setup.close(queue)
    worker = setup.worker()
    wait_until(lambda: bool(setup.runs()), seconds=WAIT_SECONDS)
    time.sleep(1.2)  # the refresh is in flight (job steps take 1 s at the sandbox)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert [run.status for run in setup.runs()] == [RunStatus.RUNNING.value]

    time.sleep(STALL_SECONDS + 0.5)
    setup.core.clock.now = dt.datetime.now(dt.UTC)  # type: ignore[attr-defined]
    assert setup.reap() == 1
    interrupted = setup.runs()[0]
    assert (interrupted.status, interrupted.error_code) == (RunStatus.FAILED.value, "interrupted")

    finished = subprocess.run(
        [sys.executable, "-m", "sophsync", "worker", "--burst"],
        env=setup.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stderr
    assert setup.runs()[-1].status == RunStatus.SUCCEEDED.value
    assert local_copy(setup.core) == sandbox_copy(setup.sandbox)


def test_a_run_left_open_past_its_lock_is_closed_by_the_reaper(setup: Setup) -> None:
    """A sync that could not record its end (its worker died, or the database refused it) leaves
    its run 'running'; once its lock has expired, every backend's reaper closes it as
    interrupted. A run that may still be going is left alone."""
    connection_id = setup.connect_stale("orphan")
    lock = dt.timedelta(seconds=setup.core.settings.lock_seconds)
    now = dt.datetime.now(dt.UTC)
    with setup.core.session() as session:
        for started in (now - lock - dt.timedelta(minutes=1), now - dt.timedelta(seconds=5)):
            session.add(
                SyncRun(
                    family_id=1,
                    connection_id=connection_id,
                    trigger="scheduled",
                    status=RunStatus.RUNNING.value,
                    started_at=started,
                )
            )
    setup.reap()
    old, recent = [run for run in setup.runs() if run.trigger == "scheduled"]
    assert (old.status, old.error_code) == (RunStatus.FAILED.value, "interrupted")
    assert old.finished_at is not None
    assert old.error == sync.INTERRUPTED
    assert recent.status == RunStatus.RUNNING.value
