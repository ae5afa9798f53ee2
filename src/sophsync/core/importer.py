"""Importing Sophtron transactions into a local account: idempotent, exact, duplicate-free.

For one account and one date window, every transaction Sophtron reports is matched to a stored
row, in this order:

1. the same provider transaction id (or an id the row was known by before);
2. among stored rows in the window that Sophtron no longer reports under their id:
   a. the same fingerprint (date, amount, description): the bank re-issued the id;
   b. a pending row and a posted arrival with the same description within a week, the posted
      amount within -20%..+50% of the pending one: the pending transaction posted (with a new id
      and possibly a tip added);
   c. the same amount and description within three days: a re-issued id with a shifted date;
3. otherwise a new row.

A matched row takes the new values (``updated``) or stays as it was (``unchanged``). A stored
row in the window that Sophtron no longer reports is marked ``removed`` (an authorisation that
never posted). A row a person deleted stays deleted. Amounts are integer minor units; money out
of the account is negative; an account's ``invert_sign`` flips banks that report the other way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Connection, Dialect, Table, bindparam, insert, select, update
from sqlalchemy.engine.default import DefaultDialect

from ..sophtron.models import Transaction as SophtronTransaction
from ..store.models import Transaction, TxnStatus

if TYPE_CHECKING:
    import psycopg

_TABLE = cast(Table, Transaction.__table__)


class Target(Protocol):
    """What an import reads of the local account it imports into (a stored ``Account``, or
    what a sync read of it)."""

    @property
    def id(self) -> int: ...

    @property
    def currency(self) -> str: ...

    @property
    def invert_sign(self) -> bool: ...

    #: The provider account whose rows these are (the rows' ``source_id``).
    @property
    def provider_account_id(self) -> int | None: ...


#: ISO 4217 currencies without minor units; the rest used here have two.
_ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "XAF", "XOF", "UGX", "PYG", "RWF"}
_THREE_DECIMAL = {"BHD", "JOD", "KWD", "OMR", "TND", "IQD", "LYD"}


def exponent(currency: str) -> int:
    if currency in _ZERO_DECIMAL:
        return 0
    return 3 if currency in _THREE_DECIMAL else 2


def to_minor(amount: Decimal | int | str, currency: str) -> int:
    """Integer minor units of an amount (half-even rounding past the currency's precision)."""
    value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    return int((value.scaleb(exponent(currency))).to_integral_value(ROUND_HALF_EVEN))


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


#: Currency symbols shown before an amount; other currencies show their code after it.
_SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£"}


def format_money(minor: int | None, currency: str) -> str:
    """``-$1,234.56``: exact (Decimal), with the currency's own number of decimals."""
    if minor is None:
        return "—"
    value = to_decimal(minor, currency)
    places = exponent(currency)
    digits = f"{abs(value):,.{places}f}"
    symbol = _SYMBOLS.get(currency)
    text = f"{symbol}{digits}" if symbol else f"{digits} {currency}"
    return f"-{text}" if value < 0 else text


_NOISE = re.compile(r"[^a-z0-9]+")


def normalise_description(text: str) -> str:
    return _NOISE.sub(" ", text.lower()).strip()


def fingerprint(date: dt.date, amount_minor: int, description: str) -> str:
    raw = f"{date.isoformat()}|{amount_minor}|{normalise_description(description)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Incoming:
    """A Sophtron transaction in sophsync's terms."""

    provider_id: str
    amount_minor: int
    currency: str
    date: dt.date
    posted_date: dt.date | None
    pending: bool
    description: str
    merchant: str | None
    category: str | None
    check_number: str | None
    memo: str | None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.date, self.amount_minor, self.description)

    @classmethod
    def from_sophtron(cls, txn: SophtronTransaction, account: Target) -> Incoming | None:
        """``None`` for a transaction without an amount or a date (nothing to store)."""
        amount = txn.signed_amount
        day = txn.booked_on
        if amount is None or day is None or not txn.provider_id:
            return None
        currency = txn.currency if txn.currency_symbol else account.currency
        minor = to_minor(amount, currency)
        if account.invert_sign:
            minor = -minor
        description = (txn.description or txn.merchant or "").strip()
        pending = txn.pending
        return cls(
            provider_id=txn.provider_id,
            amount_minor=minor,
            currency=currency,
            date=day,
            posted_date=None if pending else (txn.post_date or day),
            pending=pending,
            description=description,
            merchant=txn.merchant,
            category=txn.category,
            check_number=txn.check_num,
            memo=txn.memo,
        )


@dataclass
class ImportCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def __iadd__(self, other: ImportCounts) -> ImportCounts:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.removed += other.removed
        return self


_FIELDS = (
    "amount_minor",
    "currency",
    "date",
    "posted_date",
    "pending",
    "description",
    "merchant",
    "category",
    "check_number",
    "memo",
)


@dataclass(slots=True, eq=False)
class _Row:
    """A stored transaction as the importer reads it: plain values, no ORM object (a re-sync
    reads every row of its window and, most days, changes none of them). Its id, then what an
    import may change: the ids it was known by, its values, whose report it is, and whether
    it is removed."""

    id: int
    provider_id: str | None
    previous_ids: str | None
    fingerprint: str
    source_id: int | None
    status: str
    amount_minor: int
    currency: str
    date: dt.date
    posted_date: dt.date | None
    pending: bool
    description: str
    merchant: str | None
    category: str | None
    check_number: str | None
    memo: str | None


#: The columns of a stored row the importer reads, in _Row's order.
_READ = select(*(_TABLE.c[item.name] for item in fields(_Row)))
#: What an import may change in a stored row: all of _Row but its id.
_WRITTEN = tuple(item.name for item in fields(_Row) if item.name != "id")
_VALUES = attrgetter(*_WRITTEN)


@dataclass(eq=False)
class _Stored:
    row: _Row
    ids: set[str]
    #: The row's values as read: it is written back only if they changed.
    read: tuple[Any, ...]
    matched: bool = False

    @classmethod
    def of(cls, values: Sequence[Any]) -> _Stored:
        row = _Row(*values)
        ids = {row.provider_id or ""} | set(
            json.loads(row.previous_ids) if row.previous_ids else ()
        )
        return cls(row, ids, _VALUES(row))

    @property
    def changed(self) -> bool:
        return _VALUES(self.row) != self.read


def _apply(row: _Row, incoming: Incoming) -> bool:
    """Copy the incoming values onto the row; True when anything changed."""
    changed = False
    if row.provider_id != incoming.provider_id:
        previous = set(json.loads(row.previous_ids)) if row.previous_ids else set()
        if row.provider_id:
            previous.add(row.provider_id)
        row.previous_ids = json.dumps(sorted(previous))
        row.provider_id = incoming.provider_id
        changed = True
    for name in _FIELDS:
        value = getattr(incoming, name)
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if row.fingerprint != incoming.fingerprint:
        row.fingerprint = incoming.fingerprint
    if row.status != TxnStatus.ACTIVE.value:
        row.status = TxnStatus.ACTIVE.value
        changed = True
    return changed


def _posted_from_pending(stored: _Row, incoming: Incoming) -> bool:
    if not stored.pending or incoming.pending:
        return False
    if normalise_description(stored.description) != normalise_description(incoming.description):
        return False
    if abs((incoming.date - stored.date).days) > 7:
        return False
    if (stored.amount_minor < 0) != (incoming.amount_minor < 0) or stored.amount_minor == 0:
        return False
    ratio = Decimal(abs(incoming.amount_minor)) / Decimal(abs(stored.amount_minor))
    return Decimal("0.8") <= ratio <= Decimal("1.5")


def _reissued(stored: _Row, incoming: Incoming) -> bool:
    return (
        stored.amount_minor == incoming.amount_minor
        and normalise_description(stored.description) == normalise_description(incoming.description)
        and abs((incoming.date - stored.date).days) <= 3
    )


def import_transactions(
    db: Connection,
    account: Target,
    transactions: Iterable[SophtronTransaction],
    start: dt.date,
    end: dt.date,
) -> ImportCounts:
    """Make the account's rows in [start, end] match what Sophtron reported for that window.

    Every stored row can be matched (a re-linked account's old rows are the same money), but
    only rows this provider account reported are ever marked removed: history from an earlier
    source stays as it was.

    ``db`` is the caller's transaction (in an ORM session, ``session.connection()``): every
    statement is a plain one, and ``account`` is only read."""
    counts = ImportCounts()
    source = account.provider_account_id
    arrivals: dict[str, Incoming] = {}
    for txn in transactions:
        incoming = Incoming.from_sophtron(txn, account)
        if incoming is not None and start <= incoming.date <= end:
            arrivals[incoming.provider_id] = incoming
    margin = dt.timedelta(days=7)
    stored = [
        _Stored.of(values)
        for values in db.execute(
            _WINDOW, {"account_id": account.id, "first": start - margin, "last": end + margin}
        )
    ]
    # A row's current id wins over another row's previous ids.
    by_id: dict[str, _Stored] = {
        item.row.provider_id: item for item in stored if item.row.provider_id
    }
    for item in stored:
        for provider_id in item.ids:
            if provider_id:
                by_id.setdefault(provider_id, item)
    # Ids of rows outside the window still count: an arrival must not duplicate them.
    outside = _known_ids(db, account, set(arrivals) - set(by_id))

    unmatched: list[Incoming] = []
    for provider_id, incoming in arrivals.items():
        known = by_id.get(provider_id)
        if known is not None and not known.matched:
            known.matched = True
            _count(counts, _apply(known.row, incoming))
            known.row.source_id = source
        elif provider_id in outside:
            elsewhere = outside[provider_id]
            _count(counts, _apply(elsewhere.row, incoming))
            elsewhere.row.source_id = source
        else:
            unmatched.append(incoming)

    fresh: list[Incoming] = []
    orphans = [item for item in stored if not item.matched and not (item.ids & arrivals.keys())]
    for incoming in unmatched:
        found = _find(orphans, incoming) if orphans else None
        if found is not None:
            found.matched = True
            _apply(found.row, incoming)
            found.row.source_id = source
            counts.updated += 1
            continue
        fresh.append(incoming)
        counts.added += 1

    for item in orphans:
        row = item.row
        if item.matched or not start <= row.date <= end or row.source_id != source:
            continue
        if row.status == TxnStatus.ACTIVE.value and row.provider_id is not None:
            row.status = TxnStatus.REMOVED.value
            counts.removed += 1
    changed = [item.row for item in (*stored, *outside.values()) if item.changed]
    if changed:
        db.execute(
            _UPDATE,
            [
                {"row_id": row.id, **dict(zip(_WRITTEN, _VALUES(row), strict=True))}
                for row in changed
            ],
        )
    if fresh:
        _insert_new(db, account.id, source, fresh)
    return counts


def _insert_new(
    connection: Connection, account_id: int, source_id: int | None, rows: Sequence[Incoming]
) -> None:
    """Insert new rows in one go on the driver's cursor: PostgreSQL's ``COPY``, else one
    ``executemany`` of SQLAlchemy's own INSERT, compiled once for each kind of database.

    Every value goes through the column type's own bind processor for that database, as
    SQLAlchemy would send it. What is left out is SQLAlchemy's per-row bookkeeping (a parameter
    dictionary per row, every processor called row by row, the same timestamps computed for
    every row): for a first sync of a long history it cost more than the database's own work.
    ``COPY`` loads the rows about twice as fast as psycopg's ``executemany``; like the INSERT, it
    fails whole if a row breaks a constraint.
    """
    plan = _plan(connection.dialect)
    stamp = dt.datetime.now(dt.UTC)
    same: dict[str, object] = {
        "account_id": account_id,
        "source_id": source_id,
        "status": TxnStatus.ACTIVE.value,
        "deleted": False,
        "created_at": stamp,
        "updated_at": stamp,
    }
    columns: list[list[Any]] = []
    for name, process in plan.columns:
        if name in same:
            value = same[name] if process is None else process(same[name])
            columns.append([value] * len(rows))
        else:
            given = [getattr(row, name) for row in rows]
            columns.append(given if process is None else [process(value) for value in given])
    values = zip(*columns, strict=True)
    if plan.copy is None:
        connection.exec_driver_sql(plan.sql, list(values))
        return
    driver = cast("psycopg.Connection[Any]", connection.connection.driver_connection)
    with driver.cursor() as cursor, cursor.copy(plan.copy) as copy:
        for row in values:
            copy.write_row(row)


@dataclass(frozen=True)
class _InsertPlan:
    """The new rows' INSERT for one kind of database: its SQL, and the parameters it takes in
    order, each with the bind processor its value goes through (None: sent as it is)."""

    sql: str
    columns: tuple[tuple[str, Any], ...]
    #: The same columns' ``COPY ... FROM STDIN`` with psycopg (PostgreSQL), else None.
    copy: str | None


_PLANS: dict[type[Dialect], _InsertPlan] = {}
#: Every column a new row is inserted with: the ones the same for all rows of an import, then
#: each row's own (Incoming's attributes of the same names).
_INSERTED = (
    "account_id",
    "source_id",
    "status",
    "deleted",
    "created_at",
    "updated_at",
    "provider_id",
    "fingerprint",
    *_FIELDS,
)


def _plan(dialect: Dialect) -> _InsertPlan:
    """The INSERT of new rows for this dialect, compiled at its first use.

    Compiled for positional parameters (psycopg's named ones cost a lookup per value) and inline
    (no RETURNING of ids nobody reads)."""
    found = _PLANS.get(type(dialect))
    if found is None:
        positional = dialect if dialect.positional else _positional(dialect)
        compiled = insert(_TABLE).inline().compile(dialect=positional, column_keys=_INSERTED)
        assert compiled.positiontup is not None
        quote = dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in compiled.positiontup)
        found = _PLANS[type(dialect)] = _InsertPlan(
            str(compiled),
            tuple(
                (name, _TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in compiled.positiontup
            ),
            f"COPY {quote(_TABLE.name)} ({columns}) FROM STDIN"
            if dialect.driver == "psycopg"
            else None,
        )
    return found


def _positional(dialect: Dialect) -> Dialect:
    """The dialect with the positional form of its driver's parameters (``%s`` for psycopg)."""
    return cast("type[DefaultDialect]", type(dialect))(paramstyle="format")


def _count(counts: ImportCounts, changed: bool) -> None:
    if changed:
        counts.updated += 1
    else:
        counts.unchanged += 1


def _find(orphans: Sequence[_Stored], incoming: Incoming) -> _Stored | None:
    candidates = [item for item in orphans if not item.matched]
    for test in (
        lambda row: row.fingerprint == incoming.fingerprint,
        lambda row: _posted_from_pending(row, incoming),
        lambda row: _reissued(row, incoming),
    ):
        found = [item for item in candidates if test(item.row)]
        if found:
            return min(found, key=lambda item: abs((item.row.date - incoming.date).days))
    return None


def _known_ids(db: Connection, account: Target, ids: set[str]) -> dict[str, _Stored]:
    """The account's rows (any date) whose provider id is one of ``ids``."""
    if not ids:
        return {}
    if len(ids) <= _CHUNK:
        wanted = {"account_id": account.id, "provider_ids": sorted(ids)}
        return _by_provider_id(db.execute(_KNOWN, wanted))
    # Many ids (a first sync of a long history): one pass over the account's ids costs less
    # than lists of thousands of parameters, which the database parses anew each time.
    everything = select(Transaction.id, Transaction.provider_id).where(
        Transaction.account_id == account.id, Transaction.provider_id.is_not(None)
    )
    matches = sorted(row_id for row_id, provider_id in db.execute(everything) if provider_id in ids)
    found: dict[str, _Stored] = {}
    for index in range(0, len(matches), _CHUNK):
        chunk = _READ.where(_TABLE.c.id.in_(matches[index : index + _CHUNK]))
        found.update(_by_provider_id(db.execute(chunk)))
    return found


def _by_provider_id(rows: Iterable[Sequence[Any]]) -> dict[str, _Stored]:
    found = (_Stored.of(values) for values in rows)
    return {item.row.provider_id: item for item in found if item.row.provider_id}


#: Ids per query: PostgreSQL takes at most 65,535 parameters, SQLite 32,766 by default.
_CHUNK = 10_000
#: An account's rows dated from ``first`` to ``last`` (built once, like the statements below).
_WINDOW = _READ.where(
    _TABLE.c.account_id == bindparam("account_id"),
    _TABLE.c.date >= bindparam("first"),
    _TABLE.c.date <= bindparam("last"),
)
#: An account's rows whose provider id is in a list (built once; the list is bound at run time).
_KNOWN = _READ.where(
    _TABLE.c.account_id == bindparam("account_id"),
    _TABLE.c.provider_id.in_(bindparam("provider_ids", expanding=True)),
)
#: Write back a changed row (its ``updated_at`` set by the column's own ``onupdate``).
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values({name: bindparam(name) for name in _WRITTEN})
)
