"""Engines and schema migrations for SQLite (embedded, WAL) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..errors import BadInput

MIGRATIONS = Path(__file__).with_name("migrations")
#: Connections an engine keeps to a SQLite file, however many threads work at once. SQLite lets
#: one connection write at a time, so more only wait in its busy handler, each with a page cache
#: of its own: a worker running 500 syncs on a connection per sync took more CPU and time, and
#: peaked at 264 MB against 160 MB on these (docs/performance.md). Threads beyond these wait for
#: one to be given back, and are woken as soon as it is.
SQLITE_CONNECTIONS = 10


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys and a pool of
    :data:`SQLITE_CONNECTIONS` (a file; ``pool_size`` is ignored)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            kwargs = {**kwargs, "pool_size": SQLITE_CONNECTIONS, "max_overflow": 0}
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # SQLite's own lower() knows only ASCII; searches ignore case in every language.
            dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)
    raise BadInput(
        "SOPHSYNC_DATABASE_URL must start with sqlite:// or postgresql://, "
        f"not {url.split(':')[0]}",
        field="SOPHSYNC_DATABASE_URL",
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(_alembic_config(sa.create_engine("sqlite://")))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock = FileLock(f"{engine.url.database}.migrate.lock")
        with lock:
            command.upgrade(_alembic_config(engine), "head")
        return
    command.upgrade(_alembic_config(engine), "head")


def upgrade_url(url: str) -> tuple[str | None, str | None]:
    """Upgrade the database at ``url``; returns its revision before and after."""
    engine = create_engine(url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    finally:
        engine.dispose()
