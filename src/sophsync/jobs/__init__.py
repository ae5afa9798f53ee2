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

__all__ = ["LocalQueue", "Queue", "Retry", "Worker", "create_queue", "defer_poll", "defer_sync"]


def create_queue(core: Core) -> Queue:
    """The configured backend's queue (procrastinate's is opened for deferring)."""
    if core.settings.jobs == "procrastinate":
        from .pg import ProcrastinateQueue

        return ProcrastinateQueue(core).open()
    return LocalQueue(core)
