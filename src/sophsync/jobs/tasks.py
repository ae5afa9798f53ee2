"""The background work itself, the same whichever job backend runs it.

* ``sync_connection``: sync one connection under its lock. A Retryable outcome (Sophtron busy,
  rate limited, the lock held) is tried again later; a person-shaped problem is recorded on the
  run and the connection and not retried.
* ``poll_connection``: read a connecting login's job once; while it keeps working, poll again
  with growing intervals.
* ``schedule_syncs``: at the configured time each day, defer a sync of every connected login that
  has not synced since (each connection at most once in the queue).
* ``reap``: put back jobs whose worker died, release their connection locks, and close sync runs
  left running.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..core import connect, sync
from ..core.app import Core
from ..errors import Retryable, SophsyncError
from ..store.models import Connection, ConnectionStatus, RunStatus, SyncRun

logger = logging.getLogger("sophsync.jobs")

#: Polling a connecting login: the first waits, growing to the last.
POLL_DELAYS = (2.0, 3.0, 5.0, 8.0, 10.0)


class Queue(Protocol):
    def defer(
        self,
        task: str,
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        delay: float = 0.0,
        **args: Any,
    ) -> int | None: ...


class Retry(Exception):
    """Raised by a task to be run again after ``delay`` seconds."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


def sync_lock(connection_id: int) -> str:
    return f"connection:{connection_id}"


def defer_sync(
    queue: Queue,
    connection_id: int,
    *,
    trigger: str = "manual",
    backfill_from: dt.date | None = None,
) -> int | None:
    """Queue a sync of a connection (at most one waiting per connection)."""
    return queue.defer(
        "sync_connection",
        lock=sync_lock(connection_id),
        queueing_lock=f"sync:{connection_id}",
        connection_id=connection_id,
        trigger=trigger,
        backfill_from=backfill_from.isoformat() if backfill_from else None,
    )


def defer_poll(queue: Queue, connection_id: int, attempt: int = 0) -> int | None:
    delay = POLL_DELAYS[min(attempt, len(POLL_DELAYS) - 1)]
    return queue.defer(
        "poll_connection",
        queueing_lock=f"poll:{connection_id}",
        delay=delay,
        connection_id=connection_id,
        attempt=attempt,
    )


def run_sync_connection(
    core: Core,
    queue: Queue,
    job_id: str,
    *,
    connection_id: int,
    trigger: str = "manual",
    backfill_from: str | None = None,
) -> str:
    try:
        run = sync.sync_connection(
            core,
            connection_id,
            trigger=trigger,
            owner=job_id,
            backfill_from=dt.date.fromisoformat(backfill_from) if backfill_from else None,
        )
    except Retryable as error:
        raise Retry(error.retry_after or 30.0, error.message) from None
    if run.status is RunStatus.FAILED and run.error_code in {
        "sophtron_unavailable",
        "refresh_timeout",
        "refresh_failed",
        "job_institution_timeout",
        "job_institution_error",
        "job_unknown",
    }:
        raise Retry(300.0, run.error or "the sync failed; trying again later")
    return f"sync run {run.id}: {run.status.value}"


def run_poll_connection(
    core: Core, queue: Queue, job_id: str, *, connection_id: int, attempt: int = 0
) -> str:
    try:
        view = connect.poll_connection(core, connection_id)
    except Retryable as error:
        raise Retry(error.retry_after or 10.0, error.message) from None
    if view.status is ConnectionStatus.CONNECTING:
        defer_poll(queue, connection_id, attempt + 1)
    elif view.status is ConnectionStatus.CONNECTED:
        with core.session() as session:
            connection = session.get(Connection, connection_id)
            resuming_sync = connection is not None and connection.last_success_at is not None
        if resuming_sync:
            defer_sync(queue, connection_id, trigger="resume")
    return f"connection {connection_id}: {view.status.value}"


def due_connections(core: Core, now: dt.datetime) -> list[int]:
    """Connected logins whose last sync is older than today's sync time (once it has passed)."""
    today_at = sync.last_sync_time(core, now)
    with core.session() as session:
        rows = session.execute(
            select(Connection.id, Connection.last_success_at).where(
                Connection.status == ConnectionStatus.CONNECTED.value
            )
        ).all()
    return [cid for cid, last in rows if last is None or last < today_at]


def run_schedule_syncs(core: Core, queue: Queue, job_id: str) -> str:
    due = due_connections(core, core.now())
    for connection_id in due:
        defer_sync(queue, connection_id, trigger="scheduled")
    return f"{len(due)} scheduled sync(s)"


def reap_runs(core: Core, older_than: dt.timedelta) -> int:
    """Close sync runs still 'running' long after any sync could have finished: a sync whose
    worker died, or that could not write its end because the database refused it."""
    cutoff = core.now() - older_than
    with core.session() as session:
        return sync.interrupt_runs(session.connection(), core.now(), SyncRun.started_at < cutoff)


def release_locks_of(core: Core, owners: list[str]) -> None:
    """Free the connections dead jobs held, and close the sync runs they left running."""
    with core.session() as session:
        release_locks(session, core.now(), owners)


def release_locks(session: Session, now: dt.datetime, owners: list[str]) -> None:
    """:func:`release_locks_of` inside the caller's transaction, so that a reaper puts a dead
    job back and frees what it held in one step: a reaper killed half-way must not leave the
    job waiting and its connection locked until the lock expires."""
    if not owners:
        return
    held = list(session.scalars(select(Connection.id).where(Connection.lock_owner.in_(owners))))
    if not held:
        return
    session.execute(
        update(Connection)
        .where(Connection.id.in_(held))
        .values(lock_owner=None, lock_expires_at=None)
    )
    sync.interrupt_runs(session.connection(), now, SyncRun.connection_id.in_(held))


TASKS: dict[str, Callable[..., str]] = {
    "sync_connection": run_sync_connection,
    "poll_connection": run_poll_connection,
    "schedule_syncs": run_schedule_syncs,
}


def run_task(core: Core, queue: Queue, job_id: str, task: str, args: dict[str, Any]) -> str:
    """Run a task by name. Raises :class:`Retry` to be run again; other errors are final."""
    function = TASKS.get(task)
    if function is None:
        raise SophsyncError(f"unknown task {task!r}")
    return function(core, queue, job_id, **args)
