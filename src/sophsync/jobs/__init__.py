"""Background work: one task layer (``tasks``), two backends.

``local`` (the embedded default): a ``job`` table and in-process :class:`Worker` threads.
``procrastinate`` (PostgreSQL): :class:`~sophsync.jobs.pg.ProcrastinateQueue` and any number of
``sophsync worker`` processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .local import LocalQueue, Worker
from .tasks import Queue, Retry, defer_poll, defer_sync

if TYPE_CHECKING:
    from ..core.app import Core

__all__ = [
    "MAX_CONCURRENCY",
    "LocalQueue",
    "Queue",
    "Retry",
    "Worker",
    "create_queue",
    "defer_poll",
    "defer_sync",
    "pool_size_for",
]

#: The most jobs one process runs at once (``--concurrency``). A sync spends most of its time
#: waiting for the bank, so hundreds fit in one process; on PostgreSQL each running job may hold
#: a database connection, so keep workers x concurrency under the server's max_connections.
MAX_CONCURRENCY = 500


def pool_size_for(concurrency: int) -> int:
    """PostgreSQL connections a process running ``concurrency`` jobs keeps: one per job, and a
    few for the dispatcher, the heartbeat and the web pages (a SQLite file keeps a few, however
    many jobs run: see ``store.engine.SQLITE_CONNECTIONS``)."""
    return concurrency + 5


def create_queue(core: Core) -> Queue:
    """The configured backend's queue (procrastinate's is opened for deferring)."""
    if core.settings.jobs == "procrastinate":
        from .pg import ProcrastinateQueue

        return ProcrastinateQueue(core).open()
    return LocalQueue(core)
