"""Reading the local copy (every member of the family) and the few edits a person makes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..errors import BadInput
from ..store.models import Account, AccountType, BalanceHistory, Transaction, TxnStatus
from .app import Core, not_in_family, owned
from .families import Actor, require_admin
from .importer import exponent

MAX_PAGE = 1000


@dataclass(frozen=True)
class AccountView:
    id: int
    name: str
    type: AccountType
    subtype: str | None
    currency: str
    balance_minor: int
    available_minor: int | None
    balance_at: dt.datetime | None
    linked: bool
    invert_sign: bool
    sync_start_date: dt.date | None
    last_synced_at: dt.datetime | None

    @classmethod
    def of(cls, row: Account) -> AccountView:
        return cls(
            row.id,
            row.name,
            AccountType(row.type),
            row.subtype,
            row.currency,
            row.balance_minor,
            row.available_minor,
            row.balance_at,
            row.provider_account_id is not None,
            row.invert_sign,
            row.sync_start_date,
            row.last_synced_at,
        )


class TransactionView(NamedTuple):
    """A transaction as the pages, the API and the CLI show it. A named tuple, not a frozen
    dataclass: a page builds 50 to 1,000 of them, and a frozen dataclass took four times as
    long (each field set through ``object.__setattr__``)."""

    id: int
    account_id: int
    provider_id: str | None
    date: dt.date
    posted_date: dt.date | None
    pending: bool
    amount_minor: int
    currency: str
    description: str
    merchant: str | None
    category: str | None


#: The columns of a :class:`TransactionView`, in its fields' order: pages of transactions are
#: read as plain rows, not as ORM objects that nothing changes.
_VIEW_COLUMNS = tuple(getattr(Transaction, name) for name in TransactionView._fields)
#: A page of a family's shown transactions, newest first (``family_id`` and ``limit`` bound at
#: run time), built once: a page is asked for at every screen and API call, and building the
#: statement cost more than running it. Filters add to it.
_PAGE = (
    select(*_VIEW_COLUMNS)
    .join(Account, Transaction.account_id == Account.id)
    .where(
        Account.family_id == bindparam("family_id"),
        Transaction.status == TxnStatus.ACTIVE.value,
        Transaction.deleted.is_(False),
    )
    .order_by(Transaction.date.desc(), Transaction.id.desc())
    .limit(bindparam("limit", type_=Integer))
)


def _account(session: Session, actor: Actor, account_id: int) -> Account:
    return owned(session, Account, account_id, actor.family_id, "account")


#: The account's id if it is the family's.
_OWNED = select(Account.id).where(
    Account.id == bindparam("account_id"), Account.family_id == bindparam("family_id")
)


def list_accounts(core: Core, actor: Actor) -> list[AccountView]:
    with core.session() as session:
        rows = session.scalars(
            select(Account).where(Account.family_id == actor.family_id).order_by(Account.id)
        )
        return [AccountView.of(row) for row in rows]


def get_account(core: Core, actor: Actor, account_id: int) -> AccountView:
    with core.session() as session:
        return AccountView.of(_account(session, actor, account_id))


def update_account(
    core: Core,
    actor: Actor,
    account_id: int,
    *,
    name: str | None = None,
    type: AccountType | None = None,
    subtype: str | None = None,
    invert_sign: bool | None = None,
    sync_start_date: dt.date | None = None,
) -> AccountView:
    """Rename an account, change its type or subtype, its sign or its sync start date."""
    require_admin(actor, "change accounts")
    with core.session() as session:
        row = _account(session, actor, account_id)
        if name is not None:
            if not name.strip():
                raise BadInput("An account needs a name", field="name")
            row.name = name.strip()
        if type is not None:
            row.type = AccountType(type).value
        if subtype is not None:
            row.subtype = subtype or None
        if invert_sign is not None and invert_sign != row.invert_sign:
            row.invert_sign = invert_sign
            row.balance_minor = -row.balance_minor
            if row.available_minor is not None:
                row.available_minor = -row.available_minor
        if sync_start_date is not None:
            from .link import start_date

            row.sync_start_date = start_date(core, sync_start_date, None)
        return AccountView.of(row)


@dataclass(frozen=True)
class Total:
    """A sum of balances in one currency."""

    currency: str
    minor: int


@dataclass(frozen=True)
class Summary:
    """The household at a glance: net worth and balances by account type, per currency."""

    net_worth: tuple[Total, ...]
    by_type: tuple[tuple[AccountType, tuple[Total, ...]], ...]


def _totals(rows: list[AccountView]) -> tuple[Total, ...]:
    sums: dict[str, int] = {}
    for row in rows:
        sums[row.currency] = sums.get(row.currency, 0) + row.balance_minor
    return tuple(Total(currency, minor) for currency, minor in sorted(sums.items()))


def summarize(views: list[AccountView]) -> Summary:
    """Net worth (balances are signed: owed money is negative) and totals by account type."""
    by_type = tuple(
        (kind, _totals([v for v in views if v.type is kind]))
        for kind in AccountType
        if any(v.type is kind for v in views)
    )
    return Summary(_totals(views), by_type)


def balance_history(
    core: Core, actor: Actor, account_id: int, since: dt.date | None = None
) -> list[tuple[dt.date, int]]:
    """An account's end-of-day balances (minor units), oldest first, from ``since`` on."""
    with core.session() as session:
        _account(session, actor, account_id)
        query = select(BalanceHistory.date, BalanceHistory.balance_minor).where(
            BalanceHistory.account_id == account_id
        )
        if since is not None:
            query = query.where(BalanceHistory.date >= since)
        return [(day, minor) for day, minor in session.execute(query.order_by(BalanceHistory.date))]


def _scaled(amount: Decimal, currency: str, rounding: str) -> int:
    """An amount in the currency's minor units, rounded as a bound must be."""
    return int(amount.scaleb(exponent(currency)).to_integral_value(rounding))


def _size_between(
    connection: Connection, family_id: int, low: Decimal | None, high: Decimal | None
) -> ColumnElement[bool]:
    """Transactions whose size (amount either way) lies in [low, high], in each currency's units."""
    currencies = connection.scalars(
        select(Account.currency).where(Account.family_id == family_id).distinct()
    )
    size = func.abs(Transaction.amount_minor)
    clauses = []
    for currency in currencies:
        bounds = [Transaction.currency == currency]
        if low is not None:  # 0.01 yen is more than 0 yen: round the lower bound up
            bounds.append(size >= _scaled(low, currency, ROUND_CEILING))
        if high is not None:
            bounds.append(size <= _scaled(high, currency, ROUND_FLOOR))
        clauses.append(and_(*bounds))
    return or_(*clauses) if clauses else false()


def list_transactions(
    core: Core,
    actor: Actor,
    *,
    account_id: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    pending: bool | None = None,
    search: str | None = None,
    min_amount: Decimal | None = None,
    max_amount: Decimal | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[TransactionView]:
    """The family's transactions, newest first, ``limit`` at a time after ``after_id``
    (a cursor: pass the last id of the previous page).

    ``search`` matches the description or the merchant, ignoring case; ``min_amount`` and
    ``max_amount`` bound the amount's size, money in or out (``50`` finds -50.00 and 50.00)."""
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if start is not None and end is not None and start > end:
        raise BadInput("start must not be after end", field="start")
    for name, bound in (("min_amount", min_amount), ("max_amount", max_amount)):
        if bound is not None and (not bound.is_finite() or bound < 0):
            raise BadInput(f"{name} must be a positive amount, like 25.00", field=name)
    if min_amount is not None and max_amount is not None and min_amount > max_amount:
        raise BadInput("min_amount must not be above max_amount", field="min_amount")
    # A plain connection, not an ORM session, and no transaction: a page is asked for at
    # every screen and API call, reads plain rows, and changes nothing.
    with core.autocommit() as connection:
        query = _PAGE
        if account_id is not None:
            mine = {"account_id": account_id, "family_id": actor.family_id}
            if connection.execute(_OWNED, mine).first() is None:
                raise not_in_family("account", account_id)
            query = query.where(Transaction.account_id == account_id)
        if start is not None:
            query = query.where(Transaction.date >= start)
        if end is not None:
            query = query.where(Transaction.date <= end)
        if pending is not None:
            query = query.where(Transaction.pending.is_(pending))
        if search is not None and search.strip():
            text = search.strip()
            query = query.where(
                Transaction.description.icontains(text, autoescape=True)
                | Transaction.merchant.icontains(text, autoescape=True)
            )
        if min_amount is not None or max_amount is not None:
            query = query.where(_size_between(connection, actor.family_id, min_amount, max_amount))
        if after_id is not None:
            cursor = connection.execute(
                select(Transaction.date, Transaction.id)
                .join(Account, Transaction.account_id == Account.id)
                .where(Transaction.id == after_id, Account.family_id == actor.family_id)
            ).first()
            if cursor is None:
                raise BadInput(
                    "The cursor names no transaction; start from the first page", field="after_id"
                )
            query = query.where(tuple_(Transaction.date, Transaction.id) < tuple_(*cursor))
        rows = connection.execute(query, {"family_id": actor.family_id, "limit": limit}).all()
        return [TransactionView._make(row) for row in rows]


def delete_transaction(core: Core, actor: Actor, transaction_id: int) -> None:
    """Hide a transaction for good: syncs never bring it back."""
    require_admin(actor, "delete transactions")
    with core.session() as session:
        row = session.get(Transaction, transaction_id)
        account = session.get(Account, row.account_id) if row is not None else None
        if row is None or account is None or account.family_id != actor.family_id:
            raise not_in_family("transaction", transaction_id)
        row.deleted = True
