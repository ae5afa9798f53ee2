"""Syncing against a real sandbox, on both databases: refresh, windows, matching, locks, limits."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy import exc as sa_exc

from sophsync.core import connect, credentials, families, link, quota, sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, Conflict, NeedsUser, NotFound, PermissionDenied, Retryable
from sophsync.sandbox import FaultSpec, RateLimit, SandboxServer
from sophsync.sandbox.faults import RateLimiter
from sophsync.sophtron import SecurityQuestionsPrompt
from sophsync.sophtron.errors import RateLimited
from sophsync.store.models import (
    Account,
    BalanceHistory,
    Connection,
    ConnectionStatus,
    ProviderAccount,
    RunStatus,
    Transaction,
    TxnStatus,
)
from tests.conftest import ACCESS_KEY, TODAY, USER_ID
from tests.core.conftest import (
    ADMIN_PASSWORD,
    FAST,
    Clock,
    Refusal,
    advance,
    connect_and_link,
    connect_bank,
    institution_id,
)

REFRESH = "UserInstitution/RefreshUserInstitution"
ACCOUNTS = "UserInstitution/GetUserInstitutionAccounts"
TRANSACTIONS = "Transaction/GetTransactionsByTransactionDate"
JOB = "Job/GetJobInformationByID"

T = TypeVar("T")

Copy = set[tuple[str, int, bool]]


# --- the sandbox's side ---------------------------------------------------------------------------


def stats(sandbox: SandboxServer) -> dict[str, Any]:
    return httpx.get(f"{sandbox.root}/_sandbox/stats", timeout=30).json()


def reset_stats(sandbox: SandboxServer) -> None:
    httpx.delete(f"{sandbox.root}/_sandbox/stats", timeout=30).raise_for_status()


def calls(seen: dict[str, Any], route: str) -> int:
    """Requests (any status) the sandbox counted for ``POST /api/{route}``."""
    return sum(seen["routes"].get(f"POST /api/{route}", {}).values())


def exact_truth(sandbox: SandboxServer) -> dict[str, Any]:
    """``/_sandbox/truth`` with amounts as exact decimals."""
    response = httpx.get(f"{sandbox.root}/_sandbox/truth", timeout=30)
    return json.loads(response.text, parse_float=Decimal)


def day_of(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def truth_accounts(sandbox: SandboxServer, login_id: str | None) -> dict[str, dict[str, Any]]:
    """The accounts of one login, by Sophtron AccountID."""
    (login,) = [
        item for item in exact_truth(sandbox)["Logins"] if item["UserInstitutionID"] == login_id
    ]
    return {account["AccountID"]: account for account in login["Accounts"]}


def truth_copy(account: dict[str, Any], since: dt.date | None = None) -> Copy:
    return {
        (t["TransactionID"], int(t["Amount"] * 100), t["Status"] == "Pending")
        for t in account["Transactions"]
        if since is None or day_of(t["TransactionDate"]) >= since
    }


# --- the local side -------------------------------------------------------------------------------


def linked_accounts(core: Core, connection_id: int) -> dict[str, int]:
    """Local account ids of a connection's linked accounts, by Sophtron AccountID."""
    with core.session() as session:
        found = session.execute(
            select(ProviderAccount.provider_account_id, Account.id)
            .join(Account, Account.provider_account_id == ProviderAccount.id)
            .where(ProviderAccount.connection_id == connection_id)
        ).all()
    return dict(found)


def local_copy(core: Core, account_id: int, status: TxnStatus = TxnStatus.ACTIVE) -> Copy:
    with core.session() as session:
        found = session.execute(
            select(Transaction.provider_id, Transaction.amount_minor, Transaction.pending).where(
                Transaction.account_id == account_id, Transaction.status == status.value
            )
        ).all()
    return {(provider_id or "", amount, pending) for provider_id, amount, pending in found}


def count_rows(core: Core, account_id: int, status: TxnStatus = TxnStatus.ACTIVE) -> int:
    with core.session() as session:
        return len(
            session.scalars(
                select(Transaction.id).where(
                    Transaction.account_id == account_id, Transaction.status == status.value
                )
            ).all()
        )


def account_row(core: Core, account_id: int) -> Account:
    with core.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account


def connection_row(core: Core, connection_id: int) -> Connection:
    with core.session() as session:
        connection = session.get(Connection, connection_id)
        assert connection is not None
        return connection


def assert_matches_truth(
    core: Core,
    sandbox: SandboxServer,
    view: connect.ConnectionView,
    since: dt.date | None = None,
) -> None:
    """Every linked account's active rows equal what the sandbox shows (ids, amounts, pending)."""
    accounts = truth_accounts(sandbox, view.provider_login_id)
    local = linked_accounts(core, view.id)
    assert local, "nothing is linked"
    for provider_account_id, account_id in local.items():
        expected = truth_copy(accounts[provider_account_id], since)
        assert local_copy(core, account_id) == expected, accounts[provider_account_id][
            "AccountName"
        ]
        assert count_rows(core, account_id) == len(expected)


def new_admin(core: Core, email: str = "owner@example.com") -> Actor:
    actor = families.create_family(core, "The Joneses", email, ADMIN_PASSWORD)
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    return actor


# --- the first sync and later ones ----------------------------------------------------------------


def test_first_sync_after_connect_reads_the_link_window_without_refreshing(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_bank(core, admin, username="first+accounts=2+years=1")
    link.link_all(core, admin, view.id, history_days=90)
    reset_stats(engine_sandbox)

    run = sync.sync_connection(core, view.id, poller=FAST)

    seen = stats(engine_sandbox)
    assert run.status is RunStatus.SUCCEEDED
    assert calls(seen, REFRESH) == 0
    assert calls(seen, JOB) == 0
    assert calls(seen, ACCOUNTS) == 1
    assert calls(seen, TRANSACTIONS) == 2
    assert run.requests == seen["total"] == 3
    assert (run.window_start, run.window_end) == (
        TODAY - dt.timedelta(days=90),
        TODAY + dt.timedelta(days=1),
    )
    assert_matches_truth(core, engine_sandbox, view, since=TODAY - dt.timedelta(days=90))
    assert run.added == sum(count_rows(core, a) for a in linked_accounts(core, view.id).values())
    assert run.added > 0
    assert (run.updated, run.removed) == (0, 0)
    with core.session() as session:
        oldest = session.scalar(select(Transaction.date).order_by(Transaction.date).limit(1))
    assert oldest is not None
    assert oldest >= TODAY - dt.timedelta(days=90)
    for account_id in linked_accounts(core, view.id).values():
        assert account_row(core, account_id).last_synced_at == core.now()
    assert connection_row(core, view.id).last_success_at == core.now()


def test_later_sync_refreshes_once_and_counts_every_request(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="later+accounts=3+years=0.2")
    sync.sync_connection(core, view.id, poller=FAST)
    unlinked = linked_accounts(core, view.id).popitem()[1]
    link.unlink(core, admin, unlinked)

    advance(engine_sandbox, clock, 3)
    reset_stats(engine_sandbox)
    spent_before = quota.usage(core, admin.family_id)
    run = sync.sync_connection(core, view.id, poller=FAST)

    seen = stats(engine_sandbox)
    assert run.status is RunStatus.SUCCEEDED
    assert calls(seen, REFRESH) == 1
    assert calls(seen, ACCOUNTS) == 1
    assert calls(seen, TRANSACTIONS) == 2  # the linked accounts only
    assert calls(seen, JOB) >= 1
    assert run.requests == seen["total"]
    assert run.requests == calls(seen, REFRESH) + calls(seen, ACCOUNTS) + calls(
        seen, TRANSACTIONS
    ) + calls(seen, JOB)
    assert quota.usage(core, admin.family_id) == spent_before + run.requests
    assert run.added > 0
    assert_matches_truth(core, engine_sandbox, view)
    assert connection_row(core, view.id).data_fresh_at == core.now()
    # The run a sync returns is the run it stored, window and counts included.
    assert sync.sync_runs(core, admin, connection_id=view.id)[0] == run
    assert run.window_start is not None
    assert run.finished_at == core.now()


def test_family_sync_refreshes_each_login_once(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    first = connect_and_link(core, admin, username="one+accounts=2+years=0.2")
    second = connect_and_link(
        core, admin, name="Sophtron Bank Captcha", username="two+accounts=1+years=0.2"
    )
    advance(engine_sandbox, clock, 2)
    reset_stats(engine_sandbox)

    runs = sync.sync_family(core, admin, poller=FAST)

    seen = stats(engine_sandbox)
    assert [run.connection_id for run in runs] == [first.id, second.id]
    assert all(run.status is RunStatus.SUCCEEDED for run in runs)
    assert calls(seen, REFRESH) == 2
    assert calls(seen, ACCOUNTS) == 2
    assert calls(seen, TRANSACTIONS) == 3
    assert sum(run.requests for run in runs) == seen["total"]
    assert_matches_truth(core, engine_sandbox, first)
    assert_matches_truth(core, engine_sandbox, second)


# --- windows --------------------------------------------------------------------------------------


def test_second_sync_resumes_from_the_last_sync_minus_the_overlap(
    core: Core,
    admin: Actor,
    engine_sandbox: SandboxServer,
    clock: Clock,
    make_core: Callable[..., Core],
) -> None:
    overlapping = make_core(engine_sandbox, overlap_days=5)
    assert overlapping.settings.overlap_days == 5
    view = connect_bank(core, admin, username="window+accounts=1+years=1")
    (account_id,) = link.link_all(core, admin, view.id, history_days=100)

    first = sync.sync_connection(overlapping, view.id, poller=FAST)
    assert (first.window_start, first.window_end) == (
        TODAY - dt.timedelta(days=100),
        TODAY + dt.timedelta(days=1),
    )
    advance(engine_sandbox, clock, 10)
    assert sync.window(overlapping, account_row(core, account_id), None) == (
        TODAY - dt.timedelta(days=5),
        TODAY + dt.timedelta(days=11),
    )
    second = sync.sync_connection(overlapping, view.id, poller=FAST)
    assert (second.window_start, second.window_end) == (
        TODAY - dt.timedelta(days=5),
        TODAY + dt.timedelta(days=11),
    )
    # Rows older than the window stay as they were.
    assert_matches_truth(core, engine_sandbox, view, since=TODAY - dt.timedelta(days=100))


def test_window_never_starts_before_the_sync_start_date(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    assert core.settings.overlap_days == 30
    view = connect_bank(core, admin, username="short+accounts=1+years=0.5")
    (account_id,) = link.link_all(core, admin, view.id, history_days=3)
    first = sync.sync_connection(core, view.id, poller=FAST)
    assert first.window_start == TODAY - dt.timedelta(days=3)
    advance(engine_sandbox, clock, 10)
    second = sync.sync_connection(core, view.id, poller=FAST)
    assert (second.window_start, second.window_end) == (
        TODAY - dt.timedelta(days=3),
        TODAY + dt.timedelta(days=11),
    )
    with core.session() as session:
        dates = session.scalars(
            select(Transaction.date).where(Transaction.account_id == account_id)
        ).all()
    assert dates
    assert min(dates) >= TODAY - dt.timedelta(days=3)
    assert_matches_truth(core, engine_sandbox, view, since=TODAY - dt.timedelta(days=3))


def test_history_days_default_and_limits(
    core: Core, admin: Actor, make_core: Callable[..., Core], engine_sandbox: SandboxServer
) -> None:
    view = connect_bank(core, admin, username="history+accounts=3+years=0.2")
    first, second, third = link.provider_accounts(core, admin, view.id)

    with pytest.raises(BadInput) as too_long:
        link.link_new(core, admin, first.id, history_days=5000)
    assert too_long.value.field == "history_days"
    with pytest.raises(BadInput):
        link.link_new(core, admin, first.id, history_days=0)
    with pytest.raises(BadInput) as future:
        link.link_new(core, admin, first.id, sync_start_date=TODAY + dt.timedelta(days=1))
    assert future.value.field == "sync_start_date"
    assert link.provider_accounts(core, admin, view.id)[0].linked_account_id is None

    custom = make_core(engine_sandbox, history_days=45)
    account_id = link.link_new(custom, admin, third.id)
    assert account_row(core, account_id).sync_start_date == TODAY - dt.timedelta(days=45)

    linked = link.link_all(core, admin, view.id)
    assert len(linked) == 2
    for account_id in linked:
        assert account_row(core, account_id).sync_start_date == TODAY - dt.timedelta(days=120)
    with pytest.raises(Conflict):
        link.link_new(core, admin, second.id)


def test_backfill_reads_from_the_given_date_and_moves_the_start_back(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_bank(core, admin, username="backfill+accounts=2+years=1")
    accounts = link.link_all(core, admin, view.id, history_days=30)
    first = sync.sync_connection(core, view.id, poller=FAST)
    assert first.window_start == TODAY - dt.timedelta(days=30)
    rows_before = sum(count_rows(core, account_id) for account_id in accounts)

    since = TODAY - dt.timedelta(days=200)
    backfill = sync.sync_connection(core, view.id, backfill_from=since, poller=FAST)
    assert backfill.status is RunStatus.SUCCEEDED
    assert (backfill.window_start, backfill.window_end) == (since, TODAY + dt.timedelta(days=1))
    assert backfill.added > 0
    assert backfill.removed == 0
    assert sum(count_rows(core, a) for a in accounts) == rows_before + backfill.added
    for account_id in accounts:
        assert account_row(core, account_id).sync_start_date == since
    assert_matches_truth(core, engine_sandbox, view, since=since)

    # The next ordinary sync resumes from the last one and keeps the older rows.
    later = sync.sync_connection(core, view.id, poller=FAST)
    assert later.window_start == TODAY - dt.timedelta(days=30)
    assert (later.added, later.updated, later.removed) == (0, 0, 0)
    assert_matches_truth(core, engine_sandbox, view, since=since)

    # A shorter backfill reads its window and leaves the earlier start where it is.
    shorter = sync.sync_connection(
        core, view.id, backfill_from=since + dt.timedelta(days=100), poller=FAST
    )
    assert shorter.status is RunStatus.SUCCEEDED
    for account_id in accounts:
        assert account_row(core, account_id).sync_start_date == since


# --- pending, posted, balances --------------------------------------------------------------------


def test_pending_transactions_post_across_syncs_and_the_copy_equals_the_truth(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="pending+daily=20+accounts=3+years=0.1")
    sync.sync_connection(core, view.id, poller=FAST)
    assert_matches_truth(core, engine_sandbox, view)
    before = truth_accounts(engine_sandbox, view.provider_login_id)
    pending_before = {
        t["ID"]: t
        for account in before.values()
        for t in account["Transactions"]
        if t["Status"] == "Pending"
    }
    assert len(pending_before) > 20

    advance(engine_sandbox, clock, 10)
    run = sync.sync_connection(core, view.id, poller=FAST)
    assert run.status is RunStatus.SUCCEEDED
    assert_matches_truth(core, engine_sandbox, view)

    after = truth_accounts(engine_sandbox, view.provider_login_id)
    records_after = {t["ID"]: t for account in after.values() for t in account["Transactions"]}
    vanished = [r for r in pending_before if r not in records_after]
    new_ids = [
        r
        for r, t in pending_before.items()
        if r in records_after and records_after[r]["TransactionID"] != t["TransactionID"]
    ]
    tipped = [
        r
        for r, t in pending_before.items()
        if r in records_after and records_after[r]["Amount"] != t["Amount"]
    ]
    # The scenario holds what it should: postings under new ids, and tips.
    assert new_ids
    assert tipped
    assert run.removed == len(vanished)

    still_pending = {
        t["TransactionID"]
        for account in after.values()
        for t in account["Transactions"]
        if t["Status"] == "Pending"
    }
    with core.session() as session:
        local_pending = set(
            session.scalars(
                select(Transaction.provider_id).where(
                    Transaction.pending.is_(True),
                    Transaction.status == TxnStatus.ACTIVE.value,
                )
            )
        )
    assert local_pending == still_pending
    assert not local_pending & {t["TransactionID"] for t in pending_before.values()}


def test_balances_equal_the_truth_with_daily_history(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="balances+years=0.2")
    sync.sync_connection(core, view.id, poller=FAST)

    def check(day: dt.date) -> None:
        accounts = truth_accounts(engine_sandbox, view.provider_login_id)
        linked = linked_accounts(core, view.id)
        assert len(linked) == 6
        for provider_account_id, account_id in linked.items():
            expected = accounts[provider_account_id]
            account = account_row(core, account_id)
            assert account.balance_minor == int(expected["Balance"] * 100)
            available = expected["AvailableBalance"]
            assert account.available_minor == (None if available is None else int(available * 100))
            assert account.balance_at == core.now()
            with core.session() as session:
                entry = session.scalar(
                    select(BalanceHistory).where(
                        BalanceHistory.account_id == account_id, BalanceHistory.date == day
                    )
                )
                assert entry is not None
                assert entry.balance_minor == account.balance_minor
                assert entry.available_minor == account.available_minor

    check(TODAY)
    advance(engine_sandbox, clock, 4)
    sync.sync_connection(core, view.id, poller=FAST)
    check(TODAY + dt.timedelta(days=4))
    with core.session() as session:
        days = session.scalars(select(BalanceHistory.date).distinct()).all()
    assert sorted(days) == [TODAY, TODAY + dt.timedelta(days=4)]

    # A second sync the same day rewrites that day's entry, never adds another.
    with core.session() as session:
        session.execute(update(BalanceHistory).values(balance_minor=1, available_minor=None))
    sync.sync_connection(core, view.id, poller=FAST)
    check(TODAY + dt.timedelta(days=4))
    with core.session() as session:
        entries = session.scalar(select(func.count()).select_from(BalanceHistory))
    assert entries == 2 * 6


def test_an_inverted_account_flips_balances_and_amounts(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_bank(core, admin, username="inverted+accounts=3+years=0.2")
    truth = truth_accounts(engine_sandbox, view.provider_login_id)
    card_provider = next(pid for pid, a in truth.items() if a["AccountType"] == "Credit_Card")
    card = truth[card_provider]
    assert card["AvailableBalance"] is not None
    with core.session() as session:
        source = session.scalars(
            select(ProviderAccount.id).where(
                ProviderAccount.connection_id == view.id,
                ProviderAccount.provider_account_id == card_provider,
            )
        ).one()
    account_id = link.link_new(core, admin, source, history_days=1000, invert_sign=True)

    def check_balances() -> None:
        account = account_row(core, account_id)
        assert account.invert_sign is True
        assert account.balance_minor == -int(card["Balance"] * 100)
        assert account.available_minor == -int(card["AvailableBalance"] * 100)

    check_balances()  # as linked
    run = sync.sync_connection(core, view.id, poller=FAST)
    assert run.status is RunStatus.SUCCEEDED
    check_balances()  # as synced
    assert local_copy(core, account_id) == {
        (provider_id, -amount, pending) for provider_id, amount, pending in truth_copy(card)
    }
    with core.session() as session:
        entry = session.scalars(
            select(BalanceHistory).where(BalanceHistory.account_id == account_id)
        ).one()
    assert entry.balance_minor == -int(card["Balance"] * 100)
    assert entry.available_minor == -int(card["AvailableBalance"] * 100)


def test_a_sync_writes_every_account_the_bank_reports_and_reads_the_linked_ones(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    """Of three accounts, the card is linked inverted, the checking account plainly, and the
    third not at all and unknown locally (the bank reports it for the first time): the sync
    records all three as reported now, sets both linked balances with their own signs, and
    reads the linked accounts only."""
    view = connect_bank(core, admin, username="reported+accounts=3+years=0.2")
    truth = truth_accounts(engine_sandbox, view.provider_login_id)
    with core.session() as session:
        sources = dict(
            session.execute(
                select(ProviderAccount.provider_account_id, ProviderAccount.id).where(
                    ProviderAccount.connection_id == view.id
                )
            ).all()
        )
    kinds = {pid: account["AccountType"] for pid, account in truth.items()}
    card = next(pid for pid, kind in kinds.items() if kind == "Credit_Card")
    checking, other = sorted(pid for pid in truth if pid != card)
    inverted = link.link_new(core, admin, sources[card], history_days=1000, invert_sign=True)
    plain = link.link_new(core, admin, sources[checking], history_days=1000)
    with core.session() as session:
        session.execute(
            update(ProviderAccount)
            .where(ProviderAccount.id == sources[checking])
            .values(name="stale", balance_minor=1)
        )
        session.execute(delete(ProviderAccount).where(ProviderAccount.id == sources[other]))
    reset_stats(engine_sandbox)

    run = sync.sync_connection(core, view.id, poller=FAST)

    assert run.status is RunStatus.SUCCEEDED
    assert calls(stats(engine_sandbox), TRANSACTIONS) == 2
    with core.session() as session:
        reported = {
            row.provider_account_id: row
            for row in session.scalars(
                select(ProviderAccount).where(ProviderAccount.connection_id == view.id)
            )
        }
        assert set(reported) == set(truth)
        for pid, account in truth.items():
            row = reported[pid]
            assert (row.name, row.balance_minor) == (
                account["AccountName"],
                int(account["Balance"] * 100),
            )
        assert reported[other].account is None
        history = dict(
            session.execute(select(BalanceHistory.account_id, BalanceHistory.balance_minor)).all()
        )
    sign = {inverted: -1, plain: 1}
    for account_id, pid in ((inverted, card), (plain, checking)):
        balance = sign[account_id] * int(truth[pid]["Balance"] * 100)
        assert account_row(core, account_id).balance_minor == balance
        assert history[account_id] == balance
        assert local_copy(core, account_id) == {
            (provider_id, sign[account_id] * amount, pending)
            for provider_id, amount, pending in truth_copy(truth[pid])
        }


# --- MFA during a refresh -------------------------------------------------------------------------


def test_mfa_during_refresh_waits_for_an_answer_then_resumes_the_same_job(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(
        core,
        admin,
        name="Sophtron Bank SecurityQuestion",
        username="asked+mfa-again+accounts=2+years=0.2",
    )
    assert view.status is ConnectionStatus.CONNECTED
    first = sync.sync_connection(core, view.id, poller=FAST)
    assert first.status is RunStatus.SUCCEEDED

    advance(engine_sandbox, clock, 2)
    reset_stats(engine_sandbox)
    asked = sync.sync_connection(core, view.id, poller=FAST)
    assert asked.status is RunStatus.NEEDS_INPUT
    assert asked.error_code == "requires_update"
    assert (asked.added, asked.updated, asked.removed) == (0, 0, 0)
    seen = stats(engine_sandbox)
    assert calls(seen, REFRESH) == 1
    assert calls(seen, JOB) >= 1
    assert calls(seen, TRANSACTIONS) == 0
    assert asked.requests == seen["total"]

    waiting = connect.get_connection(core, admin, view.id)
    assert waiting.status is ConnectionStatus.REQUIRES_UPDATE
    assert waiting.waiting_for_person
    assert isinstance(waiting.prompt, SecurityQuestionsPrompt)
    assert waiting.prompt.questions == ("What is your favorite color?",)
    stored = connection_row(core, view.id)
    assert stored.challenge_kind == "security_questions"
    assert stored.challenge_enc is not None
    assert stored.job_purpose == "sync"
    assert stored.job_id is not None
    job_id = stored.job_id

    # Syncing again before anyone answers: a failed run, nothing sent.
    total_before = stats(engine_sandbox)["total"]
    blocked = sync.sync_connection(core, view.id, poller=FAST)
    assert blocked.status is RunStatus.FAILED
    assert blocked.error_code == "requires_update"
    assert blocked.requests == 0
    assert stats(engine_sandbox)["total"] == total_before
    assert connection_row(core, view.id).job_id == job_id

    answered = connect.answer_challenge(core, admin, view.id, ["blue"])
    assert answered.status is ConnectionStatus.CONNECTING
    resumed = sync.sync_connection(core, view.id, poller=FAST)
    assert resumed.status is RunStatus.SUCCEEDED
    assert resumed.added > 0
    assert calls(stats(engine_sandbox), REFRESH) == 1
    done = connection_row(core, view.id)
    assert done.status == ConnectionStatus.CONNECTED.value
    assert (done.job_id, done.job_purpose, done.challenge_enc) == (None, None, None)
    assert connect.get_connection(core, admin, view.id).prompt is None
    assert_matches_truth(core, engine_sandbox, view)


# --- unlink, reconnect, relink --------------------------------------------------------------------


def test_unlinked_account_keeps_its_history_and_is_no_longer_synced(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="unlink+accounts=2+years=0.2")
    sync.sync_connection(core, view.id, poller=FAST)
    (kept_provider, kept), (_, dropped) = sorted(linked_accounts(core, view.id).items())
    history = local_copy(core, dropped)
    assert history
    synced_at = account_row(core, dropped).last_synced_at

    link.unlink(core, admin, dropped)
    with pytest.raises(Conflict):
        link.unlink(core, admin, dropped)
    assert account_row(core, dropped).provider_account_id is None
    assert local_copy(core, dropped) == history

    advance(engine_sandbox, clock, 5)
    reset_stats(engine_sandbox)
    run = sync.sync_connection(core, view.id, poller=FAST)
    assert run.status is RunStatus.SUCCEEDED
    assert calls(stats(engine_sandbox), TRANSACTIONS) == 1
    assert local_copy(core, dropped) == history
    assert account_row(core, dropped).last_synced_at == synced_at
    truth = truth_accounts(engine_sandbox, view.provider_login_id)
    assert local_copy(core, kept) == truth_copy(truth[kept_provider])
    assert [item.linked_account_id for item in link.provider_accounts(core, admin, view.id)].count(
        None
    ) == 1


def test_relinking_after_a_reconnect_does_not_duplicate(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    username = "relink+accounts=2+years=0.3"
    old = connect_and_link(core, admin, username=username)
    sync.sync_connection(core, old.id, poller=FAST)
    old_accounts = linked_accounts(core, old.id)
    old_truth = truth_accounts(engine_sandbox, old.provider_login_id)
    checking_provider = next(
        pid for pid, a in old_truth.items() if a["AccountName"] == "Primary Checking"
    )
    checking = old_accounts[checking_provider]
    before = count_rows(core, checking)
    assert before == len(old_truth[checking_provider]["Transactions"])

    link.unlink(core, admin, checking)
    assert count_rows(core, checking) == before

    new = connect_bank(core, admin, username=username)
    assert new.id != old.id
    assert new.provider_login_id != old.provider_login_id
    new_truth = truth_accounts(engine_sandbox, new.provider_login_id)
    new_provider = next(
        pid for pid, a in new_truth.items() if a["AccountName"] == "Primary Checking"
    )
    new_ids = {t["TransactionID"] for t in new_truth[new_provider]["Transactions"]}
    assert len(new_ids) == before
    assert not new_ids & {t["TransactionID"] for t in old_truth[checking_provider]["Transactions"]}
    with core.session() as session:
        new_checking = session.scalars(
            select(ProviderAccount.id).where(
                ProviderAccount.connection_id == new.id,
                ProviderAccount.provider_account_id == new_provider,
            )
        ).one()

    link.link_existing(core, admin, new_checking, checking)
    run = sync.sync_connection(core, new.id, poller=FAST)
    assert run.status is RunStatus.SUCCEEDED
    assert run.added == 0
    assert run.removed == 0
    assert count_rows(core, checking) == len(new_ids)
    assert count_rows(core, checking, TxnStatus.REMOVED) == 0
    with core.session() as session:
        recent = session.scalars(
            select(Transaction.provider_id).where(
                Transaction.account_id == checking,
                Transaction.date >= run.window_start,
            )
        ).all()
    assert recent
    assert set(recent) <= new_ids


# --- locks ----------------------------------------------------------------------------------------


def test_a_held_lock_refuses_a_second_sync(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_and_link(core, admin, username="locked+accounts=1+years=0.2")
    assert sync.acquire_lock(core, view.id, "other")
    assert not sync.acquire_lock(core, view.id, "someone-else")
    reset_stats(engine_sandbox)

    with pytest.raises(Retryable) as refused:
        sync.sync_connection(core, view.id, poller=FAST)
    assert refused.value.code == "sync_in_progress"
    assert refused.value.retry_after is not None
    assert refused.value.retry_after > 0
    assert sync.sync_runs(core, admin) == []
    assert stats(engine_sandbox)["total"] == 0
    assert connection_row(core, view.id).lock_owner == "other"

    sync.release_lock(core, view.id, "someone-else")  # not the owner: no effect
    assert connection_row(core, view.id).lock_owner == "other"
    sync.release_lock(core, view.id, "other")
    run = sync.sync_connection(core, view.id, poller=FAST)
    assert run.status is RunStatus.SUCCEEDED
    assert connection_row(core, view.id).lock_owner is None

    with pytest.raises(NotFound):
        sync.sync_connection(core, 10_000, poller=FAST)


def test_a_sync_that_breaks_gives_the_lock_back_and_never_shows_the_key(
    core: Core, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = connect_and_link(core, admin, username="broken+accounts=1+years=0.2")
    seen: list[str] = []

    def broken(core: Core, client: object, start: object, *_: object) -> bool:
        seen.append(repr(start))
        raise RuntimeError("a bug")

    monkeypatch.setattr(sync, "_refresh", broken)
    with pytest.raises(RuntimeError):
        sync.sync_connection(core, view.id, poller=FAST)
    assert connection_row(core, view.id).lock_owner is None
    assert "run_id=" in seen[0]
    assert ACCESS_KEY not in seen[0]

    monkeypatch.undo()
    assert sync.sync_connection(core, view.id, poller=FAST).status is RunStatus.SUCCEEDED


def test_a_sync_without_saved_credentials_fails_and_says_so(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_and_link(core, admin, username="nocreds+accounts=1+years=0.2")
    credentials.remove_credentials(core, admin)
    reset_stats(engine_sandbox)
    run = sync.sync_connection(core, view.id, poller=FAST)
    assert (run.status, run.error_code, run.requests) == (RunStatus.FAILED, "no_credentials", 0)
    stored = connection_row(core, view.id)
    assert (stored.last_error_code, stored.lock_owner) == ("no_credentials", None)
    assert stats(engine_sandbox)["total"] == 0
    assert sync.sync_runs(core, admin, connection_id=view.id)[0] == run


def test_an_expired_lock_is_taken_over(core: Core, admin: Actor, clock: Clock) -> None:
    view = connect_and_link(core, admin, username="expired+accounts=1+years=0.2")
    assert sync.acquire_lock(core, view.id, "crashed-worker")
    clock.advance(seconds=core.settings.lock_seconds - 1)
    with pytest.raises(Retryable):
        sync.sync_connection(core, view.id, poller=FAST)

    clock.advance(seconds=2)
    run = sync.sync_connection(core, view.id, poller=FAST)
    assert run.status is RunStatus.SUCCEEDED
    stored = connection_row(core, view.id)
    assert (stored.lock_owner, stored.lock_expires_at) == (None, None)


def test_a_sync_whose_lock_was_taken_over_records_its_end_and_leaves_the_lock(
    core: Core, admin: Actor, clock: Clock
) -> None:
    """The sync outlived its lock and another took it over while it read the accounts: its end
    is still recorded, and the other's lock stays."""
    view = connect_and_link(core, admin, username="outlived+accounts=1+years=0.2")
    later = clock.now + dt.timedelta(seconds=core.settings.lock_seconds)

    def taken_over(step: str, done: int, total: int) -> None:
        with core.session() as session:
            session.execute(
                update(Connection)
                .where(Connection.id == view.id)
                .values(lock_owner="other", lock_expires_at=later)
            )

    run = sync.sync_connection(core, view.id, poller=FAST, progress=taken_over)
    assert run.status is RunStatus.SUCCEEDED
    stored = connection_row(core, view.id)
    assert (stored.lock_owner, stored.lock_expires_at) == ("other", later)
    assert stored.last_success_at == run.finished_at


def test_a_job_whose_last_writes_were_refused_takes_its_lock_back_when_it_runs_again(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    """The database refused a sync's end and its lock's release: the run stays 'running' and
    the connection locked by the job. When that job runs again it takes the lock back at once,
    closes the run it left as interrupted and syncs; anyone else waits for the lock to expire."""
    view = connect_and_link(core, admin, username="refused+accounts=2+years=0.2")
    advance(engine_sandbox, clock, 1)

    with Refusal(core, "sync_run", "connection") as refusal, pytest.raises(sa_exc.OperationalError):
        sync.sync_connection(core, view.id, poller=FAST, owner="job-7")
    assert refusal.refused == 2  # the run's end, then the lock's release
    assert connection_row(core, view.id).lock_owner == "job-7"
    assert [run.status for run in sync.sync_runs(core, admin)] == [RunStatus.RUNNING]

    with pytest.raises(Retryable):
        sync.sync_connection(core, view.id, poller=FAST, owner="job-8")
    run = sync.sync_connection(core, view.id, poller=FAST, owner="job-7")
    assert run.status is RunStatus.SUCCEEDED
    older = sync.sync_runs(core, admin)[1]
    assert (older.status, older.error_code) == (RunStatus.FAILED, "interrupted")
    assert older.error == sync.INTERRUPTED
    assert connection_row(core, view.id).lock_owner is None
    assert_matches_truth(core, engine_sandbox, view)


def test_two_concurrent_syncs_of_one_connection(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    # Each job step of this login takes a while, so the two syncs overlap.
    started = connect.start_connection(
        core,
        admin,
        institution_id(core, admin, "Sophtron Bank NoMFA"),
        "race+job-seconds=0.2+accounts=2+years=0.2",
        "bank-password",
    )
    view = connect.wait_for_connection(core, started.id, interval=0.05, timeout=10)
    assert view.status is ConnectionStatus.CONNECTED
    link.link_all(core, admin, view.id, history_days=1000)
    advance(engine_sandbox, clock, 1)

    barrier = threading.Barrier(2)
    results: list[sync.SyncRunView] = []
    refusals: list[Retryable] = []
    others: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(
                sync.sync_connection(core, view.id, poller=sync.Poller(interval=0.02, maximum=0.05))
            )
        except Retryable as error:
            refusals.append(error)
        except BaseException as error:
            others.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert others == []
    assert len(results) == 1
    assert len(refusals) == 1
    assert results[0].status is RunStatus.SUCCEEDED
    assert refusals[0].code == "sync_in_progress"
    assert calls(stats(engine_sandbox), REFRESH) == 1
    assert len(sync.sync_runs(core, admin)) == 1
    assert_matches_truth(core, engine_sandbox, view)
    assert connection_row(core, view.id).lock_owner is None


# --- rate limits, faults and the budget -----------------------------------------------------------


def test_rate_limited_sync_fails_retryably(
    make_sandbox: Callable[..., SandboxServer],
    make_core: Callable[..., Core],
    clock: Clock,
) -> None:
    limited = make_sandbox(rate_limit=RateLimit.parse("12/MIN"))
    core = make_core(limited)
    waits: list[float] = []
    core.sophtron_options["sleep"] = waits.append  # honour Retry-After without waiting
    admin = new_admin(core)
    view = connect_and_link(core, admin, username="limited+accounts=6+years=0.2")
    spent = stats(limited)["total"]
    assert spent < 12
    assert waits == []

    advance(limited, clock, 1)
    reset_stats(limited)
    run = sync.sync_connection(core, view.id, poller=FAST)

    seen = stats(limited)
    assert run.status is RunStatus.FAILED
    assert run.error_code == "sophtron_unavailable"
    as_raised = credentials.sophtron_error(
        RateLimited("limited", status_code=429, route=TRANSACTIONS, retry_after=60)
    )
    assert isinstance(as_raised, Retryable)
    assert as_raised.code == run.error_code
    assert run.error is not None
    assert "429" in run.error
    assert seen["statuses"].get("429", 0) == 4  # the first try and three retries
    assert run.requests == seen["total"]
    assert len(waits) == 3
    assert all(wait >= 30 for wait in waits)  # the sandbox's Retry-After, not a back-off
    stored = connection_row(core, view.id)
    assert stored.last_error_code == "sophtron_unavailable"
    assert stored.lock_owner is None
    assert stored.last_success_at is None


def test_injected_429s_are_retried_and_the_sync_completes(
    make_sandbox: Callable[..., SandboxServer],
    make_core: Callable[..., Core],
    clock: Clock,
) -> None:
    faulty = make_sandbox(faults=FaultSpec.parse("429=0.3,retry-after=0.05"))
    core = make_core(faulty)
    admin = new_admin(core)
    view = connect_and_link(core, admin, username="faulty+accounts=4+years=0.2")

    advance(faulty, clock, 2)
    reset_stats(faulty)
    run = sync.sync_connection(core, view.id, poller=FAST)

    seen = stats(faulty)
    assert run.status is RunStatus.SUCCEEDED, run.error
    rejected = seen["statuses"].get("429", 0)
    assert rejected > 0
    assert seen["faults"].get("429", 0) == rejected
    assert run.requests == seen["total"] == seen["statuses"]["200"] + rejected
    assert calls(seen, TRANSACTIONS) >= 4
    assert_matches_truth(core, faulty, view)


def test_spent_budget_stops_scheduled_syncs_but_not_manual_ones(
    core: Core,
    admin: Actor,
    engine_sandbox: SandboxServer,
    make_core: Callable[..., Core],
) -> None:
    view = connect_and_link(core, admin, username="budget+accounts=2+years=0.2")
    spent = quota.usage(core, admin.family_id)
    assert spent >= 3
    frugal = make_core(engine_sandbox, monthly_budget=3)

    reset_stats(engine_sandbox)
    refused = sync.sync_connection(frugal, view.id, trigger="scheduled", poller=FAST)
    assert refused.status is RunStatus.FAILED
    assert refused.error_code == "quota_exceeded"
    assert refused.trigger == "scheduled"
    assert refused.requests == 0
    assert stats(engine_sandbox)["total"] == 0
    assert quota.usage(core, admin.family_id) == spent
    stored = connection_row(core, view.id)
    assert stored.last_error_code is None
    assert stored.status == ConnectionStatus.CONNECTED.value

    manual = sync.sync_connection(frugal, view.id, poller=FAST)
    assert manual.status is RunStatus.SUCCEEDED
    assert manual.requests > 0
    assert manual.added > 0
    assert quota.usage(core, admin.family_id) == spent + manual.requests

    # Within the budget, scheduled syncs run.
    scheduled = sync.sync_connection(core, view.id, trigger="scheduled", poller=FAST)
    assert scheduled.status is RunStatus.SUCCEEDED
    assert scheduled.trigger == "scheduled"


# --- families and run history ---------------------------------------------------------------------


def test_family_sync_needs_a_connection_and_an_admin(
    core: Core, admin: Actor, member: Actor
) -> None:
    with pytest.raises(NeedsUser) as nothing:
        sync.sync_family(core, admin, poller=FAST)
    assert nothing.value.code == "no_connections"
    with pytest.raises(PermissionDenied):
        sync.sync_family(core, member, poller=FAST)
    assert sync.sync_runs(core, admin) == []


def test_sync_runs_lists_newest_first_with_counts(
    core: Core, admin: Actor, member: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="runs+accounts=3+years=0.2")
    with pytest.raises(PermissionDenied):
        sync.sync_family(core, member, poller=FAST)
    first = sync.sync_connection(core, view.id, poller=FAST)
    second = sync.sync_connection(core, view.id, trigger="scheduled", poller=FAST)
    advance(engine_sandbox, clock, 3)
    (third,) = sync.sync_family(core, admin, poller=FAST)

    assert first.added > 0
    assert first.unchanged == 0
    assert (second.added, second.updated, second.removed) == (0, 0, 0)
    assert 0 < second.unchanged <= first.added
    assert third.added > 0
    runs = sync.sync_runs(core, admin)
    assert runs == [third, second, first]
    assert [run.id for run in runs] == sorted((run.id for run in runs), reverse=True)
    assert [run.trigger for run in runs] == ["manual", "scheduled", "manual"]
    assert all(run.status is RunStatus.SUCCEEDED for run in runs)
    assert all(run.finished_at is not None for run in runs)
    assert sync.sync_runs(core, admin, limit=2) == [third, second]
    assert sync.sync_runs(core, member) == runs

    stranger = families.create_family(core, "Strangers", "stranger@example.com", ADMIN_PASSWORD)
    assert sync.sync_runs(core, stranger) == []


def test_linking_an_account_to_another_source_keeps_its_history(core: Core, admin: Actor) -> None:
    """Re-pointing an account at another bank account removes nothing the old one reported, and
    the new source's first sync reads its history from the sync start date."""
    view = connect_bank(core, admin, username="moving+accounts=2")
    first, second = link.provider_accounts(core, admin, view.id)
    account_id = link.link_new(core, admin, first.id, history_days=365)
    sync.sync_connection(core, view.id, poller=FAST)
    with core.session() as session:
        before = set(
            session.scalars(select(Transaction.id).where(Transaction.account_id == account_id))
        )
    assert before

    link.unlink(core, admin, account_id)
    link.link_existing(core, admin, second.id, account_id)
    run = sync.sync_connection(core, view.id, poller=FAST)

    assert run.removed == 0
    with core.session() as session:
        rows = session.scalars(select(Transaction).where(Transaction.account_id == account_id))
        by_source: dict[int | None, list[Transaction]] = {}
        for row in rows:
            by_source.setdefault(row.source_id, []).append(row)
            assert row.status == TxnStatus.ACTIVE.value, (row.date, row.description)
    assert {row.id for row in by_source[first.id]} == before
    assert min(row.date for row in by_source[second.id]) < TODAY - dt.timedelta(days=60)
    again = sync.sync_connection(core, view.id, poller=FAST)
    assert (again.added, again.removed) == (0, 0)


def test_a_sync_reports_its_progress_account_by_account(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    view = connect_and_link(core, admin, username="progress+accounts=3")
    advance(engine_sandbox, clock, 1)  # the data is stale: the sync refreshes first
    heard: list[tuple[str, int, int]] = []
    run = sync.sync_connection(
        core, view.id, poller=FAST, progress=lambda *event: heard.append(event)
    )
    assert run.status is RunStatus.SUCCEEDED
    assert heard[0] == ("refreshing at the bank", 0, 0)
    reading = [event for event in heard if event[0].startswith("reading ")]
    assert [(done, total) for _, done, total in reading] == [(0, 3), (1, 3), (2, 3)]
    assert heard[-1] == ("done", 3, 3)


# --- what a sync writes, and when -----------------------------------------------------------------


def commits_during(core: Core, work: Callable[[], T]) -> tuple[T, int]:
    """``work``'s result, and how many database transactions committed while it ran."""
    committed = [0]

    def count(*_: object) -> None:
        committed[0] += 1

    event.listen(core.engine, "commit", count)
    try:
        return work(), committed[0]
    finally:
        event.remove(core.engine, "commit", count)


def test_after_the_refresh_a_sync_writes_twice_however_many_accounts_it_reads(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    """One transaction takes the lock and starts the run, one records the refresh job, one each
    read of the job while it runs, one the finished job with the accounts, and one every
    account's transactions with the run's end."""
    view = connect_and_link(core, admin, username="fewwrites+accounts=4+years=0.2")
    advance(engine_sandbox, clock, 3)
    reset_stats(engine_sandbox)

    run, commits = commits_during(core, lambda: sync.sync_connection(core, view.id, poller=FAST))

    seen = stats(engine_sandbox)
    assert run.status is RunStatus.SUCCEEDED
    assert calls(seen, TRANSACTIONS) == 4
    assert commits == 2 + (calls(seen, JOB) - 1) + 2
    assert run.added > 0
    assert_matches_truth(core, engine_sandbox, view)


def test_a_sync_that_fails_part_way_keeps_what_it_read_and_reads_the_rest_next_time(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    """Sophtron starts refusing requests (a 429 asking for a day's wait) as the second of three
    accounts is read: the run fails, and what came before is written all the same (the finished
    refresh, the balances, the first account's transactions, counted in the run); the other
    accounts keep their rows and windows, and the next sync reads them."""
    view = connect_and_link(core, admin, username="partway+accounts=3+years=0.5")
    sync.sync_connection(core, view.id, poller=FAST)
    linked = linked_accounts(core, view.id)
    before = {pid: (account_row(core, aid), local_copy(core, aid)) for pid, aid in linked.items()}
    advance(engine_sandbox, clock, 30)
    read_first: list[str] = []

    def refuse_from_the_second_account(step: str, done: int, total: int) -> None:
        if step.startswith("reading ") and done == 0:
            read_first.append(step.removeprefix("reading "))
        if step.startswith("reading ") and done == 1:
            spent = RateLimiter(RateLimit(1, 86_400))  # one request a day, spent
            spent.check(USER_ID, time.monotonic())
            engine_sandbox.app.limiter = spent

    failed = sync.sync_connection(
        core, view.id, poller=FAST, progress=refuse_from_the_second_account
    )

    assert (failed.status, failed.error_code) == (RunStatus.FAILED, "sophtron_unavailable")
    truth = truth_accounts(engine_sandbox, view.provider_login_id)
    news = {pid for pid, (_, copy) in before.items() if truth_copy(truth[pid]) != copy}
    (first,) = [pid for pid, (account, _) in before.items() if account.name == read_first[0]]
    assert first in news, "the bank has news on the account read first"
    assert news - {first}, "and on another"
    assert failed.added > 0
    assert connection_row(core, view.id).data_fresh_at == core.now()
    for pid, (account, copy) in before.items():
        now = account_row(core, account.id)
        assert now.balance_minor == int(truth[pid]["Balance"] * 100)
        if pid == first:
            assert local_copy(core, account.id) == truth_copy(truth[pid])
            assert now.last_synced_at == core.now()
        else:
            assert local_copy(core, account.id) == copy
            assert now.last_synced_at == account.last_synced_at

    engine_sandbox.app.limiter = None
    clock.advance(seconds=sync.FRESH_SECONDS + 1)
    again = sync.sync_connection(core, view.id, poller=FAST)
    assert again.status is RunStatus.SUCCEEDED
    assert again.added > 0
    assert_matches_truth(core, engine_sandbox, view)


def test_a_sync_holding_many_transactions_writes_them_before_reading_on(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``BATCH_ROWS`` transactions held, a sync writes them at once: a first sync of a long
    history never holds every account's in memory."""
    view = connect_and_link(core, admin, username="batches+accounts=3+years=0.5")
    linked = linked_accounts(core, view.id)
    names = {account_row(core, aid).name: aid for aid in linked.values()}
    stored_when_read: list[int] = []
    # Read with an engine of its own, so that its transactions are not the sync's.
    onlooker = create_engine(core.engine.url)

    def count_the_first_accounts_rows(step: str, done: int, total: int) -> None:
        if step.startswith("reading ") and done == 0:
            stored_when_read.append(names[step.removeprefix("reading ")])
        elif step.startswith("reading ") and done == 1:
            with onlooker.connect() as db:
                rows = select(func.count()).where(Transaction.account_id == stored_when_read[0])
                stored_when_read.append(db.scalar(rows) or 0)

    def first_sync() -> sync.SyncRunView:
        return sync.sync_connection(
            core, view.id, poller=FAST, progress=count_the_first_accounts_rows
        )

    monkeypatch.setattr(sync, "BATCH_ROWS", 1)
    try:
        run, commits = commits_during(core, first_sync)
    finally:
        onlooker.dispose()

    assert run.status is RunStatus.SUCCEEDED
    first, stored = stored_when_read
    assert stored == count_rows(core, first) > 0
    assert commits == 2 + 3 + 1  # the run, the accounts, each account's rows, the end
    assert_matches_truth(core, engine_sandbox, view)


def test_an_account_deleted_during_the_sync_is_left_out_and_the_others_are_written(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    """The account read first is deleted while the sync reads the second: the sync writes the
    second account's transactions and succeeds; nothing is written for the deleted one."""
    view = connect_and_link(core, admin, username="deleted+accounts=2+years=0.5")
    sync.sync_connection(core, view.id, poller=FAST)
    advance(engine_sandbox, clock, 30)
    names = {account_row(core, aid).name: aid for aid in linked_accounts(core, view.id).values()}
    deleted: list[int] = []

    def delete_the_first_account(step: str, done: int, total: int) -> None:
        if step.startswith("reading ") and done == 1:
            reading = step.removeprefix("reading ")
            (first,) = [aid for name, aid in names.items() if name != reading]
            with core.session() as session:
                session.execute(delete(Account).where(Account.id == first))
            deleted.append(first)

    run = sync.sync_connection(core, view.id, poller=FAST, progress=delete_the_first_account)

    (gone,) = deleted
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.added > 0
    assert count_rows(core, gone) == 0
    with core.session() as session:
        assert session.get(Account, gone) is None
    assert set(linked_accounts(core, view.id).values()) == set(names.values()) - {gone}
    assert_matches_truth(core, engine_sandbox, view)
    assert connection_row(core, view.id).lock_owner is None


# --- how long to wait before reading a refresh job ------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "first_wait", "reads", "took", "learnt"),
    [
        (None, 0.0, 3, 16.25, 16.25),  # nothing learnt yet: the job took at most 16.25 s
        (10.0, 10.0, 1, 10.2, 9.9),  # one read was enough: perhaps the job ended earlier
        (90.0, 60.0, 1, 60.2, 59.598),  # the wait was cut short and still enough
        (10.0, 10.0, 2, 12.0, 13.2),  # too early: at most 12 s, and a margin over it
        (10.0, 0.0, 1, 0.0, 10.0),  # nothing measured (a stopped clock): keep what is known
        (None, 0.0, 1, 0.0, None),
    ],
)
def test_learnt_refresh_seconds(
    expected: float | None, first_wait: float, reads: int, took: float, learnt: float | None
) -> None:
    assert sync.learnt_refresh_seconds(expected, first_wait, reads, took) == (
        None if learnt is None else pytest.approx(learnt)
    )


def test_first_wait_is_the_learnt_time_left() -> None:
    poller = sync.Poller(longest_first_wait=30)
    assert poller.first_wait(None, 0) == 0
    assert poller.first_wait(10, 0) == 10
    assert poller.first_wait(10, 4) == 6
    assert poller.first_wait(10, 12) == 0
    assert poller.first_wait(90, 0) == 30
    assert sync.Poller(learn=False).first_wait(10, 0) == 0


def test_a_sync_waits_as_long_as_the_last_refresh_and_reads_the_job_once(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    """The connect job teaches the login's refresh time; the sync then reads its job once."""
    waits: list[float] = []

    def ticking(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    clock.follow_real_time()

    # Each job step takes 0.5 s: a refresh (log in, download) takes 1 s.
    started = connect.start_connection(
        core,
        admin,
        institution_id(core, admin, "Sophtron Bank NoMFA"),
        "learn+job-seconds=0.5+accounts=2+years=0.1",
        "bank-password",
    )
    view = connect.wait_for_connection(core, started.id, interval=0.05, timeout=10, sleep=ticking)
    assert view.status is ConnectionStatus.CONNECTED
    learnt = connection_row(core, view.id).refresh_seconds
    assert learnt is not None
    # Our clock starts when the request that started the job has come back, a moment after the
    # sandbox's: a poll that lands right as the job ends learns a little under its 1 s.
    assert 0.9 <= learnt < 3
    link.link_all(core, admin, view.id, history_days=30)

    def next_day_sync(*, learn: bool = True) -> sync.SyncRunView:
        """A day later (stale data: a refresh at the bank), with fresh counters and waits."""
        advance(engine_sandbox, clock, 1)
        reset_stats(engine_sandbox)
        waits.clear()
        poller = sync.Poller(interval=0.05, maximum=0.1, learn=learn, sleep=ticking)
        run = sync.sync_connection(core, view.id, poller=poller)
        assert run.status is RunStatus.SUCCEEDED
        return run

    run = next_day_sync()

    # The wait is what is left of the learnt time once the refresh has been asked for.
    assert waits == [pytest.approx(learnt, abs=0.05)]
    seen = stats(engine_sandbox)
    assert calls(seen, JOB) == 1
    assert (
        run.requests
        == 1 + 1 + 1 + 2
        == sum(sum(counts.values()) for counts in seen["routes"].values())
    )
    assert connection_row(core, view.id).refresh_seconds == pytest.approx(learnt * sync.SHORTEN)

    # A guess that is too short costs job reads, and the login learns a longer one. The guess
    # (0.5 s of the 1 s refresh) is longer than the poller's longest interval, so that its wait
    # is told apart from theirs: what is left of it once the refresh has been asked for (a
    # guess shorter than the time a busy machine takes to record the job would be no wait).
    with core.session() as session:
        row = session.get(Connection, view.id)
        assert row is not None
        row.refresh_seconds = 0.5
    next_day_sync()

    assert 0.1 < waits[0] <= 0.5
    assert all(wait <= 0.1 for wait in waits[1:])
    assert calls(stats(engine_sandbox), JOB) == len(waits) >= 2
    relearnt = connection_row(core, view.id).refresh_seconds
    assert relearnt is not None
    assert relearnt >= 0.9 * sync.MARGIN  # the 1 s refresh with its margin (clocks as above)

    # A poller that does not learn reads the job at once.
    next_day_sync(learn=False)

    # No wait before the first read: one read more than waits (however busy the machine).
    assert calls(stats(engine_sandbox), JOB) == len(waits) + 1
    assert waits[:1] in ([], [pytest.approx(0.05)])
