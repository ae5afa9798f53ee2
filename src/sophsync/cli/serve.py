"""``sophsync serve``: the web app (and, embedded, its worker) in one process, or its pages
and API in several processes sharing one port (``--workers``) beside this one's worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import click
import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from ..core.app import Core
from ..jobs import MAX_CONCURRENCY, LocalQueue, Worker, pool_size_for
from ..sandbox import SandboxConfig, SandboxServer, new_credentials
from ..settings import Settings
from ..web import create_app
from ..web.threads import DEFAULT_THREADS, MAX_THREADS
from .context import LOG_FORMAT, settings_of

#: Web processes ``--workers`` accepts.
MAX_WEB_PROCESSES = 64


@dataclass(frozen=True)
class WebProcess:
    """The app factory of one web process started by ``serve --workers``.

    uvicorn starts each process afresh (``spawn``) and hands it this object, pickled: so every
    process serves with the settings ``serve`` was started with (flags, environment, config
    file, the sandbox's address and credentials) without writing them anywhere. The database is
    migrated by the parent before any process starts.
    """

    settings: Settings
    log_level: int
    threads: int

    def __call__(self) -> FastAPI:
        logging.basicConfig(level=self.log_level, format=LOG_FORMAT)
        return create_app(Core.open(self.settings, migrate=False), threads=self.threads)


@click.command(short_help="Run the web app and REST API.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--sandbox",
    "with_sandbox",
    is_flag=True,
    help="Also run the local Sophtron and use it: try everything without an account.",
)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Web tier only; run `sophsync worker` processes for the jobs (PostgreSQL).",
)
@click.option(
    "--concurrency",
    default=2,
    show_default=True,
    type=click.IntRange(1, MAX_CONCURRENCY),
    help="Jobs the in-process worker runs at the same time.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_WEB_PROCESSES),
    help="Web processes sharing the port, about one per CPU core; jobs stay in this process.",
)
@click.option(
    "--threads",
    default=DEFAULT_THREADS,
    show_default=True,
    type=click.IntRange(1, MAX_THREADS),
    help="Requests each web process works on at a time (those waiting on Sophtron aside).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    with_sandbox: bool,
    no_worker: bool,
    concurrency: int,
    workers: int,
    threads: int,
) -> None:
    """Run the web app: the household's pages at /, the REST API under /api/v1 (OpenAPI at
    /openapi.json, docs at /docs), /healthz, /readyz and /metrics.

    Embedded (SQLite), the background worker runs in the same process. With PostgreSQL, run the
    web tier with --no-worker next to `sophsync worker` processes. --sandbox starts the local
    Sophtron too, with fresh credentials that the first admin can save as they are.

    --workers N serves the pages and the API from N processes on the one port (uvicorn's
    supervisor restarts one that dies); the worker, the schedule and the sandbox stay in this
    process. --threads N is how many requests each web process works on at once: a few serve
    more pages a second than many, which only take turns at Python's one interpreter lock.
    Requests that wait on Sophtron have threads of their own.
    """
    settings = settings_of(ctx)
    if no_worker and settings.embedded:
        raise click.UsageError(
            "--no-worker needs PostgreSQL (SOPHSYNC_DATABASE_URL): with "
            "SQLite the worker must run in this process."
        )
    sandbox: SandboxServer | None = None
    if with_sandbox:
        user_id = settings.sophtron_user_id
        access_key = settings.sophtron_access_key
        if not (user_id and access_key):
            user_id, access_key = new_credentials()
        sandbox = SandboxServer(SandboxConfig(users={user_id: access_key}, job_seconds=1.0))
        sandbox.start()
        settings = settings.with_(
            sophtron_base_url=sandbox.url, sophtron_user_id=user_id, sophtron_access_key=access_key
        )
        click.echo(
            f"Sandbox Sophtron at {sandbox.url} (User ID {user_id}); saving credentials "
            "with empty fields uses it."
        )
    core = Core.open(settings, pool_size=pool_size_for(concurrency))
    worker: Worker | None = None
    worker_threads = []
    if not no_worker:
        if settings.jobs == "local":
            worker = Worker(core, LocalQueue(core), concurrency=concurrency)
            worker_threads = worker.start()
        else:
            click.echo("Jobs run on procrastinate: start `sophsync worker` processes too.")
    click.echo(f"sophsync on http://{host}:{port} (API docs at /docs); Ctrl+C to stop.")
    try:
        if workers == 1:
            app = create_app(core, threads=threads)
            uvicorn.run(app, host=host, port=port, log_level="warning")
        else:
            serve_in_processes(settings, host, port, workers, threads)
    finally:
        if worker is not None:
            worker.stop(worker_threads)
        if sandbox is not None:
            sandbox.stop()
        core.close()


def serve_in_processes(
    settings: Settings, host: str, port: int, workers: int, threads: int
) -> None:
    """Serve the app from ``workers`` processes on one socket until SIGINT or SIGTERM."""
    config = uvicorn.Config(
        WebProcess(settings, logging.getLogger().getEffectiveLevel(), threads),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
