"""The ``procrastinate`` job backend: PostgreSQL only, any number of ``sophsync worker`` processes.

The tasks are the same functions as the local backend's (``tasks``); procrastinate brings the
queue: ``lock`` (jobs of one bank login run one after the other), ``queueing_lock`` (at most one
waiting sync per login; a second defer is refused), retries with the delay a task asks for,
periodic jobs deferred once per period however many workers run, and worker heartbeats. A
periodic job puts back the jobs of workers whose heartbeat stopped (a worker killed with
SIGKILL), releases the connection locks they held and closes their sync runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy import inspect

from ..core.app import Core
from . import tasks

logger = logging.getLogger("sophsync.jobs")

MAX_ATTEMPTS = 8


def conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (drops ``+psycopg``)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def job_owner(job_id: int) -> str:
    return f"pg-job-{job_id}"


class _Retry(BaseRetryStrategy):
    """Retry when a task raises :class:`tasks.Retry`, after the delay it asks for."""

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> RetryDecision | None:
        if job.attempts + 1 >= MAX_ATTEMPTS:
            return None
        if isinstance(exception, tasks.Retry):
            return RetryDecision(retry_in={"seconds": int(max(1.0, exception.delay))})
        return RetryDecision(retry_in={"seconds": min(3600, 30 * 2**job.attempts)})


class ProcrastinateQueue:
    """Defers sophsync tasks as procrastinate jobs (the ``tasks.Queue`` interface)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.app = build_app(core, self)

    def defer(
        self,
        task: str,
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        delay: float = 0.0,
        **args: Any,
    ) -> int | None:
        options: dict[str, Any] = {}
        if lock is not None:
            options["lock"] = lock
        if queueing_lock is not None:
            options["queueing_lock"] = queueing_lock
        if delay > 0:
            options["schedule_in"] = {"seconds": int(delay)}
        try:
            return self.app.configure_task(name=f"sophsync.{task}", **options).defer(**args)
        except procrastinate_errors.AlreadyEnqueued:
            return None

    def open(self) -> ProcrastinateQueue:
        self.app.open()
        return self

    def close(self) -> None:
        self.app.close()

    def apply_schema(self) -> bool:
        """Create procrastinate's tables once; False when they exist already."""
        if "procrastinate_jobs" in inspect(self.core.engine).get_table_names():
            return False
        self.app.schema_manager.apply_schema()
        return True

    def run_worker(
        self, *, concurrency: int = 2, wait: bool = True, name: str | None = None
    ) -> None:
        """Run jobs (blocking); ``wait=False`` returns once nothing is left to do.

        Sync jobs are blocking code that procrastinate runs in the event loop's default thread
        pool; that pool is sized here to ``concurrency``, or it would hold min(32, CPUs + 4)
        threads and cap how many syncs run at once whatever ``--concurrency`` says."""
        stall = self.core.settings.job_stall_seconds

        async def work() -> None:
            asyncio.get_running_loop().set_default_executor(
                ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="sophsync-job")
            )
            options: dict[str, Any] = {
                "concurrency": concurrency,
                "wait": wait,
                "name": name,
                "fetch_job_polling_interval": 1.0,
                "update_heartbeat_interval": max(0.5, min(10.0, stall / 3)),
                "stalled_worker_timeout": stall,
                "install_signal_handlers": wait,
            }
            async with self.app.open_async():
                await self.app.run_worker_async(**options)

        asyncio.run(work())

    def reap(self) -> int:
        """Put back the jobs of dead workers (from any process); the number put back."""

        async def run() -> int:
            app = build_app(self.core, self)
            async with app.open_async():
                return await _reap(self.core, app)

        return asyncio.run(run())


async def _reap(core: Core, app: procrastinate.App) -> int:
    """Retry the jobs of workers whose heartbeat stopped; free their connections; close the sync
    runs still open after their lock has expired (as the local backend's reaper does)."""
    stalled = list(
        await app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=core.settings.job_stall_seconds
        )
    )
    for job in stalled:
        logger.warning("job %s (%s) stalled; running it again", job.id, job.task_name)
        await app.job_manager.retry_job(job)
    owners = [job_owner(job.id) for job in stalled if job.id is not None]
    await asyncio.to_thread(tasks.release_locks_of, core, owners)
    lock = dt.timedelta(seconds=core.settings.lock_seconds)
    await asyncio.to_thread(tasks.reap_runs, core, lock)
    return len(stalled)


def _owner(context: procrastinate.JobContext) -> str:
    job = context.job
    return job_owner(job.id) if job is not None and job.id is not None else "pg-job"


def build_app(core: Core, queue: ProcrastinateQueue) -> procrastinate.App:
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(core.settings.url))
    )
    retry = _Retry()

    @app.task(name="sophsync.sync_connection", pass_context=True, retry=retry)
    def sync_connection(context: procrastinate.JobContext, /, **args: Any) -> str:
        return tasks.run_task(core, queue, _owner(context), "sync_connection", args)

    @app.task(name="sophsync.poll_connection", pass_context=True, retry=retry)
    def poll_connection(context: procrastinate.JobContext, /, **args: Any) -> str:
        return tasks.run_task(core, queue, _owner(context), "poll_connection", args)

    @app.periodic(cron="*/15 * * * *", periodic_id="daily")
    @app.task(name="sophsync.schedule_syncs", queueing_lock="schedule_syncs", pass_context=True)
    def schedule_syncs(context: procrastinate.JobContext, timestamp: int) -> str:
        return tasks.run_task(core, queue, "schedule", "schedule_syncs", {})

    @app.periodic(cron="* * * * *", periodic_id="reaper")
    @app.task(name="sophsync.retry_stalled", queueing_lock="retry_stalled", pass_context=True)
    async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> str:
        return f"{await _reap(core, app)} stalled job(s) put back"

    return app
