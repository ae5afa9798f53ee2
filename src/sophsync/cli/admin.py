"""Commands that run the engine: ``worker``, ``db upgrade``, ``db copy``, ``secrets rotate``."""

from __future__ import annotations

import click

from ..core import secrets
from ..core.app import Core
from ..jobs import MAX_CONCURRENCY, LocalQueue, Worker, pool_size_for
from ..store import create_engine, head_revision, upgrade_url
from ..store.copy import copy_database
from .context import EXIT_FAILED, emit, json_option, print_table, settings_of


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the database schema to the newest version (needed at scale; automatic embedded)."""
    settings = settings_of(ctx)
    before, after = upgrade_url(settings.url)
    if before == after:
        click.echo(f"The schema is up to date (revision {after}).")
    else:
        click.echo(
            f"Upgraded the schema from {before or 'empty'} to {after} (newest: {head_revision()})."
        )


@db.command("copy")
@click.option(
    "--to",
    "target_url",
    required=True,
    metavar="URL",
    help="The empty database to copy into (postgresql://user@host/db).",
)
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Rows inserted at a time.",
)
@json_option
@click.pass_context
def db_copy(ctx: click.Context, target_url: str, batch_size: int, as_json: bool) -> None:
    """Copy this install's database (the embedded SQLite one) into an empty PostgreSQL.

    Brings the target schema to the newest version, refuses a target that holds data, copies
    every table, then checks the row counts and money sums on both sides (exit 1 if any
    differ). Keep the same key file (or SOPHSYNC_SECRET_KEY): stored secrets are copied
    encrypted. The local job queue is not copied.
    """
    settings = settings_of(ctx)
    source = create_engine(settings.url)
    target = create_engine(target_url)
    try:
        report = copy_database(source, target, batch_size=batch_size)
    finally:
        source.dispose()
        target.dispose()

    def show() -> None:
        print_table(
            "Rows",
            ["table", "source", "target", ""],
            [
                (
                    t.table,
                    t.source,
                    t.target if t.copied else "-",
                    ("ok" if t.equal else "DIFFERENT") if t.copied else "not copied",
                )
                for t in report.tables
            ],
            right=["source", "target"],
        )
        print_table(
            "Money (minor units)",
            ["sum", "source", "target", ""],
            [(m.what, m.source, m.target, "ok" if m.equal else "DIFFERENT") for m in report.money],
            right=["source", "target"],
            empty="No money stored yet.",
        )
        if report.ok:
            click.echo(
                "Copied and verified. Now point SOPHSYNC_DATABASE_URL (or database_url in the "
                "config file) at the new database and keep the same key file."
            )
        else:
            click.echo("The copy differs from the source: do not switch to it.", err=True)

    emit(as_json, {"ok": report.ok, "tables": report.tables, "money": report.money}, show)
    if not report.ok:
        raise SystemExit(EXIT_FAILED)


@click.group("secrets")
def secrets_group() -> None:
    """Manage the encryption of stored secrets."""


@secrets_group.command("rotate")
@click.pass_context
def secrets_rotate(ctx: click.Context) -> None:
    """Re-encrypt every stored secret under a new key.

    With the key file in the data directory, a new key is generated and the old one dropped.
    With SOPHSYNC_SECRET_KEY, put the new key first in the variable (comma-separated, old keys
    after it), run this command, then remove the old keys.
    """
    core = Core.open(settings_of(ctx))
    try:
        result = secrets.rotate(core)
    finally:
        core.close()
    where = f"new key in {result.key_file}" if result.key_file else "the first SOPHSYNC_SECRET_KEY"
    click.echo(f"Re-encrypted {result.tokens} stored secret(s) with {where}.")


@click.command()
@click.option(
    "--concurrency",
    default=2,
    show_default=True,
    type=click.IntRange(1, MAX_CONCURRENCY),
    help="Jobs run at the same time.",
)
@click.option("--burst", is_flag=True, help="Run the jobs that are due, then exit.")
@click.pass_context
def worker(ctx: click.Context, concurrency: int, burst: bool) -> None:
    """Run background jobs (syncs, polling, the daily schedule) until stopped.

    Any number of workers may run against one database: jobs for one bank login never overlap,
    and a worker that dies is replaced by the others (its jobs run again).
    """
    settings = settings_of(ctx)
    core = Core.open(settings, pool_size=pool_size_for(concurrency))
    if settings.jobs == "procrastinate":
        from ..jobs.pg import ProcrastinateQueue

        try:
            click.echo(
                f"Worker running {concurrency} job(s) at a time on the procrastinate "
                "queue; Ctrl+C to stop."
            )
            ProcrastinateQueue(core).run_worker(concurrency=concurrency, wait=not burst)
        finally:
            core.close()
        return
    runner = Worker(core, LocalQueue(core), concurrency=concurrency)
    try:
        if burst:
            runner.tick()
            runner.run_until_idle(timeout=3600)
            return
        runner.run_until_signalled(
            started=lambda: click.echo(
                f"Worker {runner.name} running {concurrency} job(s) at a time; Ctrl+C to stop "
                "(it finishes the running jobs first; Ctrl+C again to stop at once)."
            )
        )
    finally:
        core.close()
