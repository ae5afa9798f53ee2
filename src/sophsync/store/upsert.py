"""Insert-or-update statements for both databases, built once.

SQLite and PostgreSQL both speak ``INSERT ... ON CONFLICT (...) DO UPDATE``; SQLAlchemy builds it
with each dialect's own ``insert``. A statement with values in it is a new statement every call
(a cache key to compute, values to coerce); these take their values as parameters at execution,
so each is built once per database kind and compiled once.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def upsert(
    db: Connection,
    table: Table,
    keys: tuple[str, ...],
    rows: dict[str, Any] | list[dict[str, Any]],
    *,
    add: tuple[str, ...] = (),
    replace: tuple[str, ...] = (),
) -> None:
    """Insert ``rows`` (a row, or a non-empty list of rows sent in one go) into ``table``;
    when a row with the same ``keys`` (a unique constraint's columns) is there already, add the
    new values of the ``add`` columns to the stored ones and store the new values of the
    ``replace`` columns instead. ``db`` is the caller's transaction (in an ORM session,
    ``session.connection()``)."""
    statement = _statement(db.dialect.name, table, keys, add, replace)
    db.execute(statement, rows)


@functools.cache
def _statement(
    dialect: str,
    table: Table,
    keys: tuple[str, ...],
    add: tuple[str, ...],
    replace: tuple[str, ...],
) -> Any:
    statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(table)
    new = statement.excluded
    updates = {name: table.c[name] + new[name] for name in add}
    updates.update({name: new[name] for name in replace})
    return statement.on_conflict_do_update(
        index_elements=[table.c[key] for key in keys], set_=updates
    )
