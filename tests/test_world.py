"""The sandbox world at the unit level: every login's account kinds, determinism, invariants."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from sophsync.sandbox.catalogue import InstitutionKind, build_catalogue
from sophsync.sandbox.world import LoginData, LoginOptions

TODAY = dt.date(2026, 11, 21)
SIX_KINDS = {"Checking", "Savings", "Credit_Card", "Loan", "Investment", "Bill"}
CATALOGUE = build_catalogue(7)


def login(kind: InstitutionKind, username: str = "alice", login_id: str | None = None) -> LoginData:
    institution = next(record for record in CATALOGUE if record.kind is kind)
    return LoginData(
        login_id or str(uuid.uuid4()),
        7,
        institution,
        username,
        LoginOptions.parse(username),
        TODAY,
    )


@pytest.mark.parametrize("kind", list(InstitutionKind))
def test_every_login_has_accounts_of_every_kind(kind: InstitutionKind) -> None:
    data = login(kind)
    assert {account.template.account_type for account in data.accounts} == SIX_KINDS
    bill = next(a for a in data.accounts if a.template.account_type == "Bill")
    assert data.account_view(bill, TODAY).due_date is not None


def test_accounts_option_sets_the_count() -> None:
    data = login(InstitutionKind.BANK, "bob+accounts=3")
    assert [a.template.account_type for a in data.accounts] == [
        "Checking",
        "Savings",
        "Credit_Card",
    ]


def test_same_login_same_world_and_other_username_other_world() -> None:
    login_id = str(uuid.uuid4())
    first = login(InstitutionKind.CREDIT_UNION, "carol", login_id)
    again = login(InstitutionKind.CREDIT_UNION, "carol", login_id)
    other = login(InstitutionKind.CREDIT_UNION, "dave", login_id)

    def snapshot(data: LoginData) -> list[tuple[str, int, str]]:
        account = data.accounts[0]
        return [
            (v.transaction_id, v.amount, v.txn.description)
            for v in data.transactions(account, TODAY)
        ]

    assert snapshot(first) == snapshot(again)
    assert snapshot(first) != snapshot(other)


def test_balance_is_opening_plus_posted_and_running_balances_agree() -> None:
    data = login(InstitutionKind.BANK, "erin+daily=5")
    for account in data.accounts:
        views = data.transactions(account, TODAY)
        posted = [v for v in views if not v.pending]
        view = data.account_view(account, TODAY)
        assert view.balance == account.opening + sum(v.amount for v in posted)
        last = max(posted, key=lambda v: (v.post_day, v.txn.seq), default=None)
        if last is not None:
            assert last.balance == view.balance
        assert all(v.balance is None and v.post_day is None for v in views if v.pending)


def test_history_grows_day_by_day_without_changing_the_past() -> None:
    data = login(InstitutionKind.BANK, "frank+daily=4")
    account = data.accounts[0]
    before = {v.txn.seq: (v.txn.day, v.txn.description) for v in data.transactions(account, TODAY)}
    later = data.transactions(account, TODAY + dt.timedelta(days=20))
    after = {v.txn.seq: (v.txn.day, v.txn.description) for v in later}
    assert all(after.get(seq) == fact for seq, fact in before.items() if seq in after)
    assert max(v.txn.day for v in later) > TODAY
