"""Insert-or-update statements for both databases, built once.

SQLite and PostgreSQL both speak ``INSERT ... ON CONFLICT (...) DO UPDATE``; SQLAlchemy builds it
with each dialect's own ``insert``. A statement with values in it is a new statement every call
(a cache key to compute, values to coerce); these take their values as parameters at execution,
so each is built once per database kind and compiled once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

#: Given the table and the row that did not go in (``excluded``), the columns to update.
Updates = Callable[[Table, Any], dict[str, ColumnElement[Any]]]


def upsert(
    session: Session, table: Table, keys: tuple[str, ...], updates: Updates, **row: Any
) -> None:
    """Insert ``row`` into ``table``, or, when a row with the same ``keys`` (a unique
    constraint's columns) is there, update it as ``updates`` says. ``updates`` must be a
    module-level function: the statement is built once for each one."""
    statement = _statement(session.get_bind().dialect.name, table, keys, updates)
    session.execute(statement, row)


@functools.cache
def _statement(dialect: str, table: Table, keys: tuple[str, ...], updates: Updates) -> Any:
    statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key] for key in keys], set_=updates(table, statement.excluded)
    )
