"""Background work: one task layer (``tasks``), two backends.

``local`` (the embedded default): a ``job`` table and an in-process :class:`Worker`.
"""

from .local import LocalQueue, Worker
from .tasks import Retry, defer_poll, defer_sync

__all__ = ["LocalQueue", "Retry", "Worker", "defer_poll", "defer_sync"]
