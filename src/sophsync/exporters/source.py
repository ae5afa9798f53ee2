"""What every output reads: one household's accounts and transactions, from the local store only.

Files, pushes and the SimpleFIN bridge never call Sophtron. Each row carries a stable id that
never changes once the row exists, even when the bank re-issues its own id (a pending
transaction that posts keeps its row, hence its stable id). Downstream tools deduplicate on it:
OFX FITID, beancount and ledger metadata, Firefly III ``external_id``, Actual ``imported_id``,
SimpleFIN transaction ids. Removed transactions (authorisations that never posted) and those a
person deleted are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..core.app import Core
from ..core.families import Actor
from ..core.importer import to_decimal
from ..errors import BadInput
from ..store.models import Account, AccountType, ProviderAccount, Transaction, TxnStatus

#: Prefix of every stable id, so that a downstream tool holding ids from several sources can
#: tell ours apart.
ID_PREFIX = "sophsync-"


def transaction_stable_id(transaction_id: int) -> str:
    return f"{ID_PREFIX}{transaction_id}"


def account_stable_id(account_id: int) -> str:
    return f"{ID_PREFIX}account-{account_id}"


@dataclass(frozen=True)
class OutputAccount:
    """A local account as outputs see it. Balances follow the store's sign: liabilities owed
    are negative."""

    id: int
    stable_id: str
    name: str
    type: AccountType
    subtype: str | None
    currency: str
    balance_minor: int
    available_minor: int | None
    balance_at: dt.datetime | None
    #: The bank's name and the account number's last digits, when the account is linked.
    institution: str | None
    mask: str | None

    @property
    def balance(self) -> Decimal:
        return to_decimal(self.balance_minor, self.currency)

    @property
    def available(self) -> Decimal | None:
        if self.available_minor is None:
            return None
        return to_decimal(self.available_minor, self.currency)

    @property
    def is_liability(self) -> bool:
        return self.type in {AccountType.CREDIT_CARD, AccountType.LOAN}


@dataclass(frozen=True)
class OutputTransaction:
    """A transaction as outputs see it. Negative amounts leave the account."""

    id: int
    stable_id: str
    account_id: int
    #: Sophtron's current id for it (it may change; ``stable_id`` does not).
    provider_id: str | None
    date: dt.date
    posted_date: dt.date | None
    pending: bool
    amount_minor: int
    currency: str
    description: str
    merchant: str | None
    category: str | None
    memo: str | None
    check_number: str | None

    @property
    def amount(self) -> Decimal:
        return to_decimal(self.amount_minor, self.currency)

    @property
    def payee(self) -> str:
        """The merchant when the bank names one, else the description."""
        return (self.merchant or "").strip() or self.description.strip()


@dataclass(frozen=True)
class Selection:
    """The accounts chosen and their transactions in the date range, oldest first."""

    accounts: tuple[OutputAccount, ...]
    transactions: tuple[OutputTransaction, ...]
    start: dt.date | None
    end: dt.date | None

    def of_account(self, account_id: int) -> list[OutputTransaction]:
        return [txn for txn in self.transactions if txn.account_id == account_id]

    def account(self, account_id: int) -> OutputAccount:
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise KeyError(account_id)


def _account_view(row: Account) -> OutputAccount:
    linked: ProviderAccount | None = row.provider_account
    return OutputAccount(
        id=row.id,
        stable_id=account_stable_id(row.id),
        name=row.name,
        type=AccountType(row.type),
        subtype=row.subtype,
        currency=row.currency,
        balance_minor=row.balance_minor,
        available_minor=row.available_minor,
        balance_at=row.balance_at,
        institution=linked.connection.institution_name if linked is not None else None,
        mask=(linked.mask or None) if linked is not None else None,
    )


#: The columns an output reads, in :class:`OutputTransaction`'s order after its stable id.
_COLUMNS = (
    Transaction.id,
    Transaction.account_id,
    Transaction.provider_id,
    Transaction.date,
    Transaction.posted_date,
    Transaction.pending,
    Transaction.amount_minor,
    Transaction.currency,
    Transaction.description,
    Transaction.merchant,
    Transaction.category,
    Transaction.memo,
    Transaction.check_number,
)


def _transaction_view(row: Sequence[Any]) -> OutputTransaction:
    (
        ident,
        account_id,
        provider_id,
        date,
        posted_date,
        pending,
        amount_minor,
        currency,
        description,
        merchant,
        category,
        memo,
        check_number,
    ) = row
    return OutputTransaction(
        id=ident,
        stable_id=transaction_stable_id(ident),
        account_id=account_id,
        provider_id=provider_id,
        date=date,
        posted_date=posted_date,
        pending=pending,
        amount_minor=amount_minor,
        currency=currency,
        description=description,
        merchant=merchant,
        category=category,
        memo=memo,
        check_number=check_number,
    )


def select_outputs(
    core: Core,
    actor: Actor,
    *,
    account_ids: Sequence[int] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    pending: bool = True,
) -> Selection:
    """The household's accounts (all, or those named) and their transactions dated within
    [start, end], oldest first. ``pending=False`` leaves pending transactions out. An account
    id that is not the household's is :class:`BadInput` naming ``account``."""
    if start is not None and end is not None and start > end:
        raise BadInput("--from must not be after --to", field="from")
    with core.session() as session:
        query = (
            select(Account)
            .where(Account.family_id == actor.family_id)
            .options(
                selectinload(Account.provider_account).selectinload(ProviderAccount.connection)
            )
            .order_by(Account.id)
        )
        if account_ids:
            wanted = set(account_ids)
            query = query.where(Account.id.in_(sorted(wanted)))
        accounts = list(session.scalars(query))
        if account_ids:
            missing = sorted(set(account_ids) - {row.id for row in accounts})
            if missing:
                raise BadInput(
                    f"--account: no account has id {missing[0]}; `sophsync accounts list` "
                    "shows them",
                    field="account",
                    code="account_not_found",
                )
        # Plain rows, not ORM objects: an export of 100,000 transactions reads them all.
        txn_query = select(*_COLUMNS).where(
            Transaction.account_id.in_([row.id for row in accounts]),
            Transaction.status == TxnStatus.ACTIVE.value,
            Transaction.deleted.is_(False),
        )
        if start is not None:
            txn_query = txn_query.where(Transaction.date >= start)
        if end is not None:
            txn_query = txn_query.where(Transaction.date <= end)
        if not pending:
            txn_query = txn_query.where(Transaction.pending.is_(False))
        txn_query = txn_query.order_by(Transaction.account_id, Transaction.date, Transaction.id)
        transactions = tuple(_transaction_view(row) for row in session.execute(txn_query))
        return Selection(
            accounts=tuple(_account_view(row) for row in accounts),
            transactions=transactions,
            start=start,
            end=end,
        )
