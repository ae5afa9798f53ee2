"""The core's one object: settings, database, vault and clock, built once and passed down."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from ..errors import NotFound
from ..settings import Settings
from ..store import Vault, create_engine, session_factory, upgrade

M = TypeVar("M")

#: The connection of the :meth:`Core.autocommit` block the running code is in, with its engine:
#: a block opened inside it, on the same thread and engine, runs on the same connection.
_READS: ContextVar[tuple[Engine, Connection] | None] = ContextVar("sophsync_reads", default=None)
#: Whether this thread's database blocks take turns (:meth:`Core.taking_turns`).
_TAKING_TURNS: ContextVar[bool] = ContextVar("sophsync_taking_turns", default=False)


def load(session: Session, model: type[M], ident: int) -> M:
    """The row with this primary key, or :class:`NotFound`."""
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"No {getattr(model, '__tablename__', model.__name__)} {ident}")
    return row


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _FamilyRow(Protocol):
    family_id: int


F = TypeVar("F", bound=_FamilyRow)


def owned(session: Session, model: type[F], ident: int, family_id: int, what: str) -> F:
    """The row with this key if it belongs to the family, else :func:`not_in_family`."""
    row = session.get(model, ident)
    if row is None or row.family_id != family_id:
        raise not_in_family(what, ident)
    return row


def not_in_family(what: str, ident: int) -> NotFound:
    """The answer for a row that is missing or another family's: the same for both, so that
    nothing leaks across families."""
    return NotFound(f"No {what} {ident} in your family")


@dataclass
class Core:
    """What every core service needs. Build it with :meth:`open`; tests may pass a ``clock``.

    ``sophtron_options`` are passed to every Sophtron client the core builds (tests use it for
    fast polling).
    """

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    clock: Callable[[], dt.datetime] = _utcnow
    sophtron_options: dict[str, object] = field(default_factory=dict)
    _turns: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        migrate: bool | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        pool_size: int | None = None,
        **sophtron_options: object,
    ) -> Core:
        """Connect to the database (running migrations in the embedded mode, or when asked).

        ``pool_size``: PostgreSQL connections kept open for threads that work at once (a worker
        passes its concurrency); SQLAlchemy's default of 5, plus 10 more when busy, otherwise.
        A SQLite file keeps its own small pool whatever is asked (see
        :func:`~sophsync.store.engine.create_engine`).
        """
        engine = create_engine(settings.url, **({"pool_size": pool_size} if pool_size else {}))
        if migrate if migrate is not None else settings.embedded:
            upgrade(engine)
        if settings.secret_key:
            vault = Vault.from_secret(settings.secret_key)
        else:
            vault = Vault.from_key_file(settings.key_file)
        return cls(settings, engine, session_factory(engine), vault, clock, dict(sophtron_options))

    def now(self) -> dt.datetime:
        return self.clock()

    def today(self) -> dt.date:
        return self.clock().date()

    @contextmanager
    def taking_turns(self) -> Iterator[None]:
        """Within the block, this thread's database blocks (:meth:`session`, :meth:`connection`,
        :meth:`autocommit`) run one at a time with those of the other threads in such a block,
        on SQLite; elsewhere nothing changes. A worker's threads take turns.

        SQLite writes one transaction at a time, and a thread in one gives up the interpreter
        at every step of every statement. With hundreds of job threads at the database at once,
        each block waited for the interpreter between its steps, for the file's lock (in
        SQLite's busy handler, which sleeps) and for a pooled connection; taking turns, a
        worker ran 500 syncs a tenth faster (docs/performance.md). A block nested in another on
        the same thread needs no second turn. Threads not in such a block (the web app's) do
        not wait for turns."""
        token = _TAKING_TURNS.set(self.engine.dialect.name == "sqlite")
        try:
            yield
        finally:
            _TAKING_TURNS.reset(token)

    def _turn(self) -> AbstractContextManager[object]:
        return self._turns if _TAKING_TURNS.get() else nullcontext()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back on error."""
        with self._turn(), self.sessions.begin() as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A plain connection in a transaction, committed when the block ends and rolled back
        on error: for small, frequent work that needs no ORM session around its statements
        (a worker claiming and finishing jobs, a sync recording its refresh job)."""
        with self._turn(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A plain connection on which every statement commits on its own, with no transaction
        around them: for the reads every request makes (who sends it, a page of transactions),
        whose statements need no common snapshot.

        On PostgreSQL it spares a block a BEGIN and a COMMIT, two round trips to the server.
        SQLite's driver begins no transaction for a read, so there the block keeps its plain
        transaction (a write is committed when the block ends): setting the mode would cost
        more than it saves.

        Blocks nest: one opened inside another, on the same thread, runs on the outer block's
        connection (and on SQLite in its transaction), so that a request's reads (who sends it,
        then its page) check out one connection, not one each."""
        outer = _READS.get()
        if outer is not None and outer[0] is self.engine:
            yield outer[1]
            return
        with self._reads() as connection:
            token = _READS.set((self.engine, connection))
            try:
                yield connection
            finally:
                _READS.reset(token)

    def _reads(self) -> AbstractContextManager[Connection]:
        """A new connection for :meth:`autocommit`."""
        if self.engine.dialect.name != "postgresql":
            return self.connection()
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        self.engine.dispose()
