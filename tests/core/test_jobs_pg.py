"""The procrastinate backend's own parts: chosen on PostgreSQL, and its retry strategy. The
scenarios every backend must pass are in ``test_job_contract``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from procrastinate.jobs import Job as ProcrastinateJob

from sophsync.core import credentials, families
from sophsync.core.app import Core
from sophsync.jobs import create_queue, tasks
from sophsync.jobs.pg import MAX_ATTEMPTS, ProcrastinateQueue, _Retry
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store.models import Base
from tests.conftest import ACCESS_KEY, USER_ID
from tests.core.conftest import Clock

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


def test_the_configured_backend_is_procrastinate_on_postgresql(
    pg_core: Callable[..., tuple[Core, SandboxServer]],
) -> None:
    core, _ = pg_core()
    assert core.settings.jobs == "procrastinate"
    queue = create_queue(core)
    assert isinstance(queue, ProcrastinateQueue)
    queue.close()


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
