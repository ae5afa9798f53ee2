"""Copy a whole install from one database to another (SQLite to PostgreSQL), then verify it.

Every table of the models is copied in dependency order, in batches, inside one transaction on
the target; PostgreSQL sequences then continue after the largest id. Encrypted columns are
copied as they are, so the same key (file or ``SOPHSYNC_SECRET_KEY``) reads them on the target.

The local job queue (``job``) and the record of scheduled work already queued (``schedule``)
are not copied: queued jobs belong to the old install's workers, and with ``schedule`` left
empty the target's workers queue the current period's scheduled syncs again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import BadInput, Conflict
from .engine import upgrade
from .models import Base

#: Tables left behind (see the module's docstring).
SKIPPED = ("job", "schedule")
BATCH_SIZE = 1000


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int
    copied: bool = True

    @property
    def equal(self) -> bool:
        return not self.copied or self.source == self.target


@dataclass(frozen=True)
class MoneyCheck:
    """A sum of money on both sides: ``what`` names the column and the account, if any."""

    what: str
    source: int
    target: int

    @property
    def equal(self) -> bool:
        return self.source == self.target


@dataclass
class CopyReport:
    tables: list[TableCount] = field(default_factory=list)
    money: list[MoneyCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.equal for t in self.tables) and all(m.equal for m in self.money)


def copied_tables() -> list[sa.Table]:
    """The tables copied, parents before children."""
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED]


def _count(connection: Connection, table: sa.Table) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _holding_data(connection: Connection) -> list[str]:
    return [t.name for t in Base.metadata.sorted_tables if _count(connection, t)]


def _batches(
    connection: Connection, table: sa.Table, size: int
) -> Iterator[list[dict[str, object]]]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = connection.execution_options(yield_per=size).execute(sa.select(table).order_by(*order))
    for part in result.partitions(size):
        yield [dict(row._mapping) for row in part]


def _reset_sequences(connection: Connection) -> None:
    """Each PostgreSQL sequence continues after the largest id copied."""
    for table in Base.metadata.sorted_tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            largest = connection.execute(sa.select(sa.func.max(column))).scalar_one()
            connection.execute(
                sa.text("SELECT setval(pg_get_serial_sequence(:table, :column), :value, :called)"),
                {
                    "table": f'"{table.name}"',
                    "column": column.name,
                    "value": largest or 1,
                    "called": largest is not None,
                },
            )


def money_sums(connection: Connection) -> dict[str, int]:
    """The sums that must survive a copy: per account and in total."""
    sums: dict[str, int] = {}
    tables = Base.metadata.tables
    for table_name, column_name in (
        ("bank_transaction", "amount_minor"),
        ("account", "balance_minor"),
        ("balance_history", "balance_minor"),
    ):
        table = tables[table_name]
        column = table.c[column_name]
        total = connection.execute(sa.select(sa.func.coalesce(sa.func.sum(column), 0))).scalar_one()
        sums[f"{table_name}.{column_name}"] = int(total)
        if table_name != "account":
            rows = connection.execute(
                sa.select(table.c.account_id, sa.func.sum(column))
                .group_by(table.c.account_id)
                .order_by(table.c.account_id)
            ).all()
            for account_id, subtotal in rows:
                sums[f"{table_name}.{column_name} account {account_id}"] = int(subtotal or 0)
    return sums


def verify(source: Engine, target: Engine) -> CopyReport:
    """Row counts of every table and the money sums, on both sides."""
    report = CopyReport()
    with source.connect() as src, target.connect() as dst:
        for table in Base.metadata.sorted_tables:
            copied = table.name not in SKIPPED
            report.tables.append(
                TableCount(
                    table.name, _count(src, table), _count(dst, table) if copied else 0, copied
                )
            )
        before, after = money_sums(src), money_sums(dst)
    for what in sorted(before.keys() | after.keys()):
        report.money.append(MoneyCheck(what, before.get(what, 0), after.get(what, 0)))
    return report


def copy_database(source: Engine, target: Engine, *, batch_size: int = BATCH_SIZE) -> CopyReport:
    """Copy every table from ``source`` to the empty ``target``, then verify both agree.

    Both schemas are brought to the newest revision first. A target holding any row is
    refused (:class:`Conflict`) before anything is written.
    """
    if source.url.render_as_string(hide_password=False) == target.url.render_as_string(
        hide_password=False
    ):
        raise Conflict("The source and the target are the same database", code="same_database")
    for engine, which in ((source, "source"), (target, "target")):
        try:
            with engine.connect():
                pass
        except sa.exc.DBAPIError as error:
            reason = str(error.orig or error).strip().splitlines()[0]
            raise BadInput(f"Cannot open the {which} database: {reason}", field=which) from None
    upgrade(source)
    upgrade(target)
    with target.connect() as connection:
        full = _holding_data(connection)
    if full:
        raise Conflict(
            f"The target database already holds data (tables {', '.join(full)}); "
            "copy only into an empty database",
            code="target_not_empty",
        )
    with source.connect() as src, target.begin() as dst:
        for table in copied_tables():
            for batch in _batches(src, table, batch_size):
                dst.execute(table.insert(), batch)
        if target.dialect.name == "postgresql":
            _reset_sequences(dst)
    if target.dialect.name == "postgresql":
        # Fresh statistics, so the planner uses the indexes at once: right after a bulk load it
        # would scan and sort a whole table for one page of transactions until autovacuum ran.
        with target.connect() as connection:
            connection.execute(sa.text("ANALYZE"))
            connection.commit()
    return verify(source, target)
