"""The threads that run the web app's blocking work.

The routes are plain functions: FastAPI runs each request's route and dependencies on a pool
of threads beside the event loop (the API's read routes find who asks and run in one go there:
:func:`~sophsync.web.app.one_thread`). Most of them work on the database, and take a
millisecond or two of the interpreter each; with many threads at once they only take turns at
the one interpreter lock, and each turn costs the process more (the lock handed from thread to
thread, the operating system switching between them) while none finishes sooner. So those run
on a small pool: ``serve --threads``, :data:`DEFAULT_THREADS` by default (docs/performance.md
has what the pool's size did to the transactions API under load).

The few routes that wait on Sophtron (a bank search, a login, an answer, a poll) spend seconds
waiting and almost no interpreter: held on the small pool, they would keep the pages from being
served meanwhile. They are marked :func:`waits_on_sophtron` and run on a pool of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

P = ParamSpec("P")
T = TypeVar("T")

#: Threads each web process gives its database work unless ``serve --threads`` says otherwise.
DEFAULT_THREADS = 4
#: The most ``serve --threads`` accepts.
MAX_THREADS = 64
#: Requests to Sophtron that may wait at the same time in one web process.
SOPHTRON_THREADS = 40

#: The pool of the routes that wait on Sophtron, one per event loop (as anyio's own pool).
_SOPHTRON: RunVar[CapacityLimiter] = RunVar("sophsync_sophtron_threads")


def checked(count: int) -> int:
    """``count`` if it is a number of threads the web app runs on, else ValueError."""
    if not 1 <= count <= MAX_THREADS:
        raise ValueError(f"threads must be between 1 and {MAX_THREADS}, not {count}")
    return count


def use_threads(count: int) -> None:
    """Run the routes on ``count`` threads at most (the running event loop's default pool);
    ``create_app`` has :func:`checked` the count."""
    to_thread.current_default_thread_limiter().total_tokens = count


def waits_on_sophtron(route: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Run ``route`` (a plain function) on the pool of routes that wait on Sophtron, not on the
    database threads. FastAPI reads the parameters of ``route`` itself."""

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(route, *args, **kwargs)
        return await to_thread.run_sync(call, limiter=_sophtron_threads())

    run.waits_on_sophtron = True  # type: ignore[attr-defined]
    return run


def marked(endpoint: Callable[..., object]) -> bool:
    """Whether the endpoint is marked :func:`waits_on_sophtron`."""
    return getattr(endpoint, "waits_on_sophtron", False) is True


def _sophtron_threads() -> CapacityLimiter:
    try:
        return _SOPHTRON.get()
    except LookupError:
        limiter = CapacityLimiter(SOPHTRON_THREADS)
        _SOPHTRON.set(limiter)
        return limiter
