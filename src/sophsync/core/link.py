"""Linking what Sophtron reports (provider accounts) to the household's local accounts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import BadInput, Conflict
from ..settings import MAX_HISTORY_DAYS
from ..store.models import Account, AccountType, Connection, ProviderAccount
from .app import Core, not_in_family, owned
from .families import Actor, require_admin

#: Subtypes offered for each account type (any other text is taken too).
SUBTYPES: dict[AccountType, tuple[str, ...]] = {
    AccountType.DEPOSITORY: ("checking", "savings", "money market", "cd", "prepaid"),
    AccountType.CREDIT_CARD: ("credit card", "charge card", "store card"),
    AccountType.INVESTMENT: ("brokerage", "401k", "403b", "ira", "roth ira", "529", "hsa"),
    AccountType.LOAN: ("mortgage", "auto", "student", "personal", "home equity", "line of credit"),
    AccountType.OTHER: ("rewards", "other"),
}


@dataclass(frozen=True)
class ProviderAccountView:
    id: int
    connection_id: int
    name: str
    mask: str
    kind: AccountType
    provider_type: str | None
    provider_subtype: str | None
    currency: str
    balance_minor: int | None
    linked_account_id: int | None


def _provider_account(session: Session, actor: Actor, provider_account_id: int) -> ProviderAccount:
    row = session.get(ProviderAccount, provider_account_id)
    if row is None or row.connection.family_id != actor.family_id:
        raise not_in_family("provider account", provider_account_id)
    return row


def _account(session: Session, actor: Actor, account_id: int) -> Account:
    return owned(session, Account, account_id, actor.family_id, "account")


def _view(row: ProviderAccount) -> ProviderAccountView:
    return ProviderAccountView(
        row.id,
        row.connection_id,
        row.name,
        row.mask,
        AccountType(row.kind),
        row.provider_type,
        row.provider_subtype,
        row.currency,
        row.balance_minor,
        row.account.id if row.account is not None else None,
    )


def provider_accounts(
    core: Core, actor: Actor, connection_id: int | None = None
) -> list[ProviderAccountView]:
    with core.session() as session:
        query = (
            select(ProviderAccount)
            .join(Connection)
            .where(Connection.family_id == actor.family_id)
            .order_by(ProviderAccount.id)
        )
        if connection_id is not None:
            query = query.where(ProviderAccount.connection_id == connection_id)
        return [_view(row) for row in session.scalars(query)]


def start_date(core: Core, sync_start_date: dt.date | None, history_days: int | None) -> dt.date:
    """The first day to import for a new link: a date, or N days back (default: settings)."""
    today = core.today()
    earliest = today - dt.timedelta(days=MAX_HISTORY_DAYS)
    if sync_start_date is not None:
        if sync_start_date > today:
            raise BadInput("The sync start date cannot be in the future", field="sync_start_date")
        if sync_start_date < earliest:
            raise BadInput(
                f"Sophtron keeps at most 3 years of history: start on {earliest} or later",
                field="sync_start_date",
            )
        return sync_start_date
    days = core.settings.history_days if history_days is None else history_days
    if not 1 <= days <= MAX_HISTORY_DAYS:
        raise BadInput(
            f"history_days must be between 1 and {MAX_HISTORY_DAYS}", field="history_days"
        )
    return today - dt.timedelta(days=days)


@dataclass(frozen=True)
class LinkChoice:
    """How to link one provider account: to ``account_id``, or to a new account when None."""

    provider_account_id: int
    account_id: int | None = None
    name: str | None = None
    type: AccountType | None = None
    subtype: str | None = None
    sync_start_date: dt.date | None = None
    history_days: int | None = None
    invert_sign: bool = False


def link_many(core: Core, actor: Actor, choices: Sequence[LinkChoice]) -> list[int]:
    """Link several provider accounts at once: all of them, or none when one is refused.
    Returns the local account ids, in order."""
    require_admin(actor, "link accounts")
    first_days = [start_date(core, c.sync_start_date, c.history_days) for c in choices]
    with core.session() as session:
        return [
            _link_new(core, session, actor, choice, first_day)
            if choice.account_id is None
            else _link_existing(session, actor, choice, choice.account_id, first_day)
            for choice, first_day in zip(choices, first_days, strict=True)
        ]


def _unlinked_source(session: Session, actor: Actor, provider_account_id: int) -> ProviderAccount:
    source = _provider_account(session, actor, provider_account_id)
    if source.account is not None:
        raise Conflict(
            f"{source.name} is linked already (account {source.account.id})",
            code="linked_already",
        )
    return source


def _link_new(
    core: Core, session: Session, actor: Actor, choice: LinkChoice, first_day: dt.date
) -> int:
    source = _unlinked_source(session, actor, choice.provider_account_id)
    sign = -1 if choice.invert_sign else 1
    account = Account(
        family_id=actor.family_id,
        name=(choice.name or source.name).strip() or source.name,
        type=AccountType(choice.type or source.kind).value,
        subtype=choice.subtype if choice.subtype is not None else source.provider_subtype,
        currency=source.currency,
        balance_minor=(source.balance_minor or 0) * sign,
        available_minor=None if source.available_minor is None else source.available_minor * sign,
        balance_at=core.now(),
        provider_account_id=source.id,
        invert_sign=choice.invert_sign,
        sync_start_date=first_day,
    )
    session.add(account)
    session.flush()
    return account.id


def _link_existing(
    session: Session,
    actor: Actor,
    choice: LinkChoice,
    account_id: int,
    first_day: dt.date,
) -> int:
    source = _unlinked_source(session, actor, choice.provider_account_id)
    account = _account(session, actor, account_id)
    if account.provider_account_id is not None:
        raise Conflict(
            f"Account {account.name} is linked already; unlink it first", code="linked_already"
        )
    if account.currency != source.currency:
        raise BadInput(
            f"{account.name} is in {account.currency} but {source.name} is in {source.currency}",
            field="account_id",
        )
    account.provider_account_id = source.id
    if choice.sync_start_date is not None or account.sync_start_date is None:
        account.sync_start_date = first_day
    # The new source's first sync reads its whole history from the sync start date.
    account.last_synced_at = None
    session.flush()
    return account.id


def link_new(
    core: Core,
    actor: Actor,
    provider_account_id: int,
    *,
    name: str | None = None,
    type: AccountType | None = None,
    subtype: str | None = None,
    sync_start_date: dt.date | None = None,
    history_days: int | None = None,
    invert_sign: bool = False,
) -> int:
    """Link a provider account to a new local account; returns the new account's id."""
    choice = LinkChoice(
        provider_account_id,
        name=name,
        type=type,
        subtype=subtype,
        sync_start_date=sync_start_date,
        history_days=history_days,
        invert_sign=invert_sign,
    )
    return link_many(core, actor, [choice])[0]


def link_existing(
    core: Core,
    actor: Actor,
    provider_account_id: int,
    account_id: int,
    *,
    sync_start_date: dt.date | None = None,
) -> None:
    """Link a provider account to an existing unlinked local account (keeping its history)."""
    link_many(
        core,
        actor,
        [LinkChoice(provider_account_id, account_id=account_id, sync_start_date=sync_start_date)],
    )


def unlink(core: Core, actor: Actor, account_id: int) -> None:
    """Stop syncing an account; its transactions and history stay."""
    require_admin(actor, "unlink accounts")
    with core.session() as session:
        account = _account(session, actor, account_id)
        if account.provider_account_id is None:
            raise Conflict(f"Account {account.name} is not linked", code="not_linked")
        account.provider_account_id = None


def link_all(
    core: Core, actor: Actor, connection_id: int | None = None, history_days: int | None = None
) -> list[int]:
    """Link every unlinked provider account to a new local account of the guessed type."""
    choices = [
        LinkChoice(item.id, history_days=history_days)
        for item in provider_accounts(core, actor, connection_id)
        if item.linked_account_id is None
    ]
    return link_many(core, actor, choices)
