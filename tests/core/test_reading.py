"""Reading the local copy, on both databases: search and amount filters, totals, balance
history, the daily schedule's next sync, credentials that fall back to the saved ones, the first
run and the people of a family.

Rows are written with the store's models where a bank would take long to produce them (a
description with ``%`` in it, a balance in yen); everything else goes through the sandbox.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from sophsync.core import accounts, connect, credentials, families, quota, sync
from sophsync.core.accounts import AccountView, Summary, Total
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, Conflict, NotFound
from sophsync.sandbox import SandboxServer
from sophsync.store.models import (
    Account,
    AccountType,
    BalanceHistory,
    ProviderCredentials,
    Role,
    RunStatus,
    Transaction,
    TxnStatus,
)
from tests.conftest import ACCESS_KEY, OTHER_USER_ID, TODAY, USER_ID
from tests.core.conftest import FAST, Clock, connect_and_link

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def reading_core(make_core: Callable[..., Core], sandbox: SandboxServer) -> Core:
    """A core over the session's sandbox (these tests create no bank logins there)."""
    return make_core(sandbox)


def new_family(core: Core, name: str = "The Smiths", email: str = "admin@example.com") -> Actor:
    return families.create_family(core, name, email, PASSWORD)


def add_account(
    core: Core,
    family_id: int,
    name: str = "Checking",
    *,
    currency: str = "USD",
    type: AccountType = AccountType.DEPOSITORY,
    balance: int = 0,
) -> int:
    with core.session() as session:
        row = Account(
            family_id=family_id,
            name=name,
            type=type.value,
            currency=currency,
            balance_minor=balance,
        )
        session.add(row)
        session.flush()
        return row.id


def add_txn(
    core: Core,
    account_id: int,
    amount: int,
    description: str,
    *,
    merchant: str | None = None,
    day: dt.date = TODAY,
    pending: bool = False,
    currency: str = "USD",
    status: TxnStatus = TxnStatus.ACTIVE,
    deleted: bool = False,
) -> int:
    serial = next(_serial)
    with core.session() as session:
        row = Transaction(
            account_id=account_id,
            provider_id=f"t-{serial}",
            fingerprint=f"fp-{serial}",
            amount_minor=amount,
            currency=currency,
            date=day,
            pending=pending,
            description=description,
            merchant=merchant,
            status=status.value,
            deleted=deleted,
        )
        session.add(row)
        session.flush()
        return row.id


def ids(rows: list[accounts.TransactionView]) -> set[int]:
    return {row.id for row in rows}


def search(core: Core, actor: Actor, text: str) -> set[int]:
    return ids(accounts.list_transactions(core, actor, search=text, limit=1000))


def sized(core: Core, actor: Actor, low: str | None, high: str | None) -> set[int]:
    return ids(
        accounts.list_transactions(
            core,
            actor,
            min_amount=None if low is None else Decimal(low),
            max_amount=None if high is None else Decimal(high),
            limit=1000,
        )
    )


def dollars(core: Core, actor: Actor, account: int, low: str | None, high: str | None) -> set[int]:
    return ids(
        accounts.list_transactions(
            core,
            actor,
            account_id=account,
            min_amount=None if low is None else Decimal(low),
            max_amount=None if high is None else Decimal(high),
            limit=1000,
        )
    )


# --- search ---------------------------------------------------------------------------------------


def test_search_matches_description_or_merchant_ignoring_case(reading_core: Core) -> None:
    core = reading_core
    smiths = new_family(core)
    checking = add_account(core, smiths.family_id)
    coffee = add_txn(core, checking, -450, "POS DEBIT 1234 BLUE BOTTLE", merchant="Blue Bottle")
    by_merchant = add_txn(core, checking, -1299, "CARD 5678", merchant="Netflix.com")
    by_text = add_txn(core, checking, 250000, "Payroll ACME Corp")
    nameless = add_txn(core, checking, -100, "bottle deposit return", merchant=None)
    add_txn(core, checking, -5000, "Rent", merchant="Landlord LLC")

    assert search(core, smiths, "blue bottle") == {coffee}
    assert search(core, smiths, "BOTTLE") == {coffee, nameless}
    assert search(core, smiths, "netFLIX") == {by_merchant}  # only the merchant says so
    assert search(core, smiths, "acme") == {by_text}  # no merchant at all
    assert search(core, smiths, "  acme  ") == {by_text}  # surrounding blanks are ignored
    assert search(core, smiths, "starbucks") == set()
    everything = ids(accounts.list_transactions(core, smiths, limit=1000))
    assert len(everything) == 5
    # A blank search is no filter.
    assert search(core, smiths, "   ") == everything
    assert search(core, smiths, "") == everything

    # Another family's matching rows stay theirs.
    joneses = new_family(core, "The Joneses", "jones@example.com")
    theirs = add_txn(core, add_account(core, joneses.family_id), -450, "BLUE BOTTLE")
    assert search(core, joneses, "bottle") == {theirs}
    assert search(core, smiths, "bottle") == {coffee, nameless}

    # Combined with the other filters (account, pending, dates).
    savings = add_account(core, smiths.family_id, "Savings")
    pending = add_txn(core, savings, -725, "Blue Bottle Coffee", pending=True)
    old = add_txn(core, savings, -725, "Blue Bottle Coffee", day=TODAY - dt.timedelta(days=40))
    assert ids(accounts.list_transactions(core, smiths, search="bottle", account_id=savings)) == {
        pending,
        old,
    }
    assert ids(accounts.list_transactions(core, smiths, search="bottle", pending=True)) == {pending}
    assert ids(
        accounts.list_transactions(core, smiths, search="bottle", end=TODAY - dt.timedelta(days=1))
    ) == {old}


def test_search_treats_wildcards_and_escapes_literally(reading_core: Core) -> None:
    core = reading_core
    actor = new_family(core)
    account = add_account(core, actor.family_id)
    percent = add_txn(core, account, -1000, "Save 100% more")
    digits = add_txn(core, account, -1000, "Save 1000 more")
    underscore = add_txn(core, account, -1000, "ref A_B")
    letters = add_txn(core, account, -1000, "ref AXB")
    slash = add_txn(core, account, -1000, "transfer 50/50 split")
    backslash = add_txn(core, account, -1000, r"path C:\bank")
    quote = add_txn(core, account, -1000, "Joe's Diner", merchant="Joe's")

    assert search(core, actor, "100%") == {percent}
    assert search(core, actor, "%") == {percent}
    assert search(core, actor, "A_B") == {underscore}
    assert search(core, actor, "_") == {underscore}
    assert search(core, actor, "50/50") == {slash}
    assert search(core, actor, "/") == {slash}
    assert search(core, actor, "C:\\") == {backslash}
    assert search(core, actor, "joe's") == {quote}
    assert search(core, actor, "'; DROP TABLE bank_transaction; --") == set()
    assert len(accounts.list_transactions(core, actor, limit=1000)) == 7
    assert {digits, letters} <= ids(accounts.list_transactions(core, actor, limit=1000))


def test_search_ignores_case_beyond_ascii(reading_core: Core) -> None:
    core = reading_core
    actor = new_family(core)
    account = add_account(core, actor.family_id)
    cafe = add_txn(core, account, -650, "CAFÉ ÉCLAIR", merchant="Café Éclair")
    assert search(core, actor, "éclair") == {cafe}
    assert search(core, actor, "CAFÉ") == {cafe}


def test_search_skips_deleted_and_removed_transactions(reading_core: Core) -> None:
    core = reading_core
    actor = new_family(core)
    account = add_account(core, actor.family_id)
    kept = add_txn(core, account, -100, "Bakery")
    add_txn(core, account, -100, "Bakery", deleted=True)
    add_txn(core, account, -100, "Bakery", status=TxnStatus.REMOVED)
    assert search(core, actor, "bakery") == {kept}
    assert sized(core, actor, "1", "1") == {kept}


# --- amount bounds --------------------------------------------------------------------------------


def test_amount_bounds_are_sizes_inclusive_and_in_each_currency(reading_core: Core) -> None:
    core = reading_core
    actor = new_family(core)
    usd = add_account(core, actor.family_id, "Checking")
    jpy = add_account(core, actor.family_id, "Tokyo", currency="JPY")
    kwd = add_account(core, actor.family_id, "Kuwait", currency="KWD")
    spent_50 = add_txn(core, usd, -5000, "Groceries")
    got_50 = add_txn(core, usd, 5000, "Refund")
    spent_4999 = add_txn(core, usd, -4999, "Almost")
    spent_5001 = add_txn(core, usd, -5001, "Over")
    got_120 = add_txn(core, usd, 12000, "Salary")
    zero = add_txn(core, usd, 0, "Adjustment")
    yen_50 = add_txn(core, jpy, -50, "Onigiri", currency="JPY")  # ¥50 (no minor unit)
    yen_5000 = add_txn(core, jpy, -5000, "Dinner", currency="JPY")  # ¥5,000
    dinar_50 = add_txn(core, kwd, -50000, "Souk", currency="KWD")  # 50.000 KWD

    # 50 finds money out and money in, in each currency's own units.
    assert sized(core, actor, "50", "50") == {spent_50, got_50, yen_50, dinar_50}
    # Both bounds are inclusive; either may stand alone.
    assert sized(core, actor, "49.99", "50.01") == {
        spent_50,
        got_50,
        spent_4999,
        spent_5001,
        yen_50,
        dinar_50,
    }
    assert sized(core, actor, "51", None) == {got_120, yen_5000}
    assert sized(core, actor, None, "49") == {zero}
    # Fractions of a cent (dollars here) bound exactly.
    assert dollars(core, actor, usd, "50.01", None) == {spent_5001, got_120}
    assert dollars(core, actor, usd, None, "49.99") == {spent_4999, zero}
    assert sized(core, actor, "0", "0") == {zero}
    assert sized(core, actor, "0", None) == ids(accounts.list_transactions(core, actor, limit=1000))
    assert sized(core, actor, "120", "5000") == {got_120, yen_5000}

    # Combined with search and an account.
    assert ids(
        accounts.list_transactions(
            core, actor, search="o", min_amount=Decimal(50), max_amount=Decimal(50)
        )
    ) == {spent_50, got_50, yen_50, dinar_50} & search(core, actor, "o")
    assert ids(
        accounts.list_transactions(core, actor, account_id=jpy, min_amount=Decimal(100))
    ) == {yen_5000}

    # A family without accounts finds nothing, whatever the bounds.
    empty = new_family(core, "Empty", "empty@example.com")
    assert sized(core, empty, "0", "1000") == set()


def test_fractional_bounds_are_not_rounded_to_a_whole_unit(reading_core: Core) -> None:
    core = reading_core
    actor = new_family(core)
    yen = add_account(core, actor.family_id, "Tokyo", currency="JPY")
    add_txn(core, yen, -50, "Onigiri", currency="JPY")
    assert sized(core, actor, "50.01", None) == set()
    assert sized(core, actor, None, "49.99") == set()


@pytest.mark.parametrize(
    ("low", "high", "field"),
    [
        ("-1", None, "min_amount"),
        (None, "-0.01", "max_amount"),
        ("10", "9.99", "min_amount"),
        ("NaN", None, "min_amount"),
        (None, "Infinity", "max_amount"),
    ],
    ids=["negative-min", "negative-max", "min-above-max", "nan", "infinite"],
)
def test_amount_bounds_refuse_bad_values(
    reading_core: Core, low: str | None, high: str | None, field: str
) -> None:
    core = reading_core
    actor = new_family(core)
    add_txn(core, add_account(core, actor.family_id), -1000, "Something")
    with pytest.raises(BadInput) as caught:
        accounts.list_transactions(
            core,
            actor,
            min_amount=None if low is None else Decimal(low),
            max_amount=None if high is None else Decimal(high),
        )
    assert caught.value.field == field
    assert field in caught.value.message


def test_filtered_pages_have_no_gaps_or_duplicates(reading_core: Core) -> None:
    core = reading_core
    actor = new_family(core)
    account = add_account(core, actor.family_id)
    for day in range(30):
        for amount in (-700, 700, -2500):
            add_txn(core, account, amount, f"Coffee {day}", day=TODAY - dt.timedelta(days=day))

    def read(after: int | None, limit: int) -> list[accounts.TransactionView]:
        return accounts.list_transactions(
            core,
            actor,
            search="coffee",
            min_amount=Decimal("7"),
            max_amount=Decimal("7.00"),
            after_id=after,
            limit=limit,
        )

    everything = read(None, 1000)
    assert len(everything) == 60
    assert all(abs(row.amount_minor) == 700 for row in everything)
    pages: list[accounts.TransactionView] = []
    after = None
    while True:
        page = read(after, 7)
        if not page:
            break
        pages.extend(page)
        after = page[-1].id
    assert [row.id for row in pages] == [row.id for row in everything]


def test_a_cursor_from_another_family_is_refused(reading_core: Core) -> None:
    core = reading_core
    smiths = new_family(core)
    theirs = add_txn(core, add_account(core, smiths.family_id), -100, "Smiths' secret")
    joneses = new_family(core, "The Joneses", "jones@example.com")
    add_txn(core, add_account(core, joneses.family_id), -100, "Joneses' own")
    with pytest.raises(BadInput) as caught:
        accounts.list_transactions(core, joneses, after_id=theirs)
    assert caught.value.field == "after_id"
    with pytest.raises(BadInput):
        accounts.list_transactions(core, joneses, after_id=2**31 - 1)


# --- totals ---------------------------------------------------------------------------------------


def view(
    account_id: int, kind: AccountType, currency: str, balance: int, *, linked: bool = True
) -> AccountView:
    return AccountView(
        account_id,
        f"Account {account_id}",
        kind,
        None,
        currency,
        balance,
        None,
        None,
        linked,
        False,
        None,
        None,
    )


def test_summarize_totals_by_currency_and_type() -> None:
    views = [
        view(1, AccountType.DEPOSITORY, "USD", 150_000),
        view(2, AccountType.CREDIT_CARD, "USD", -45_099),
        view(3, AccountType.LOAN, "USD", -20_000_000),
        view(4, AccountType.DEPOSITORY, "CAD", 12_345),
        view(5, AccountType.INVESTMENT, "USD", 1_000_001, linked=False),
        view(6, AccountType.DEPOSITORY, "USD", 0),
        view(7, AccountType.CREDIT_CARD, "CAD", -345),
    ]
    summary = accounts.summarize(views)
    assert summary.net_worth == (
        Total("CAD", 12_000),
        Total("USD", 150_000 - 45_099 - 20_000_000 + 1_000_001),
    )
    # Types in the enum's order, only those present, each with its currencies sorted.
    assert summary.by_type == (
        (AccountType.DEPOSITORY, (Total("CAD", 12_345), Total("USD", 150_000))),
        (AccountType.CREDIT_CARD, (Total("CAD", -345), Total("USD", -45_099))),
        (AccountType.INVESTMENT, (Total("USD", 1_000_001),)),
        (AccountType.LOAN, (Total("USD", -20_000_000),)),
    )
    assert accounts.summarize([]) == Summary((), ())
    assert accounts.summarize([view(1, AccountType.OTHER, "EUR", -1)]) == Summary(
        (Total("EUR", -1),), ((AccountType.OTHER, (Total("EUR", -1),)),)
    )


def test_summarize_the_family_accounts(reading_core: Core) -> None:
    core = reading_core
    actor = new_family(core)
    add_account(core, actor.family_id, "Checking", balance=250_075)
    add_account(core, actor.family_id, "Card", type=AccountType.CREDIT_CARD, balance=-50_000)
    add_account(core, actor.family_id, "Yen", currency="JPY", balance=3_000)
    other = new_family(core, "The Joneses", "jones@example.com")
    add_account(core, other.family_id, "Not ours", balance=999_999)
    summary = accounts.summarize(accounts.list_accounts(core, actor))
    assert summary.net_worth == (Total("JPY", 3_000), Total("USD", 200_075))
    assert dict(summary.by_type) == {
        AccountType.DEPOSITORY: (Total("JPY", 3_000), Total("USD", 250_075)),
        AccountType.CREDIT_CARD: (Total("USD", -50_000),),
    }


# --- balance history ------------------------------------------------------------------------------


def test_balance_history_since_and_family_isolation(reading_core: Core) -> None:
    core = reading_core
    smiths = new_family(core)
    account = add_account(core, smiths.family_id)
    other_account = add_account(core, smiths.family_id, "Savings")
    days = [TODAY - dt.timedelta(days=n) for n in (400, 30, 10, 1, 0)]
    with core.session() as session:
        # Written out of order: the history comes back oldest first.
        for day, balance in sorted(zip(days, (100, 200, -300, 400, 500), strict=True)):
            session.add(BalanceHistory(account_id=account, date=day, balance_minor=balance))
        session.add(BalanceHistory(account_id=other_account, date=TODAY, balance_minor=7))
    everything = accounts.balance_history(core, smiths, account)
    assert everything == [
        (days[0], 100),
        (days[1], 200),
        (days[2], -300),
        (days[3], 400),
        (days[4], 500),
    ]
    # ``since`` is inclusive.
    assert accounts.balance_history(core, smiths, account, since=days[1]) == everything[1:]
    assert (
        accounts.balance_history(core, smiths, account, since=days[1] + dt.timedelta(days=1))
        == everything[2:]
    )
    assert accounts.balance_history(core, smiths, account, since=TODAY + dt.timedelta(1)) == []
    assert accounts.balance_history(core, smiths, other_account) == [(TODAY, 7)]
    assert accounts.balance_history(core, smiths, add_account(core, smiths.family_id)) == []

    members = families.add_user(core, smiths, "kid@example.com", PASSWORD, Role.MEMBER)
    assert accounts.balance_history(core, members, account) == everything
    joneses = new_family(core, "The Joneses", "jones@example.com")
    with pytest.raises(NotFound):
        accounts.balance_history(core, joneses, account)
    with pytest.raises(NotFound):
        accounts.balance_history(core, joneses, account, since=days[0])
    with pytest.raises(NotFound):
        accounts.balance_history(core, smiths, 2**31 - 1)


# --- the daily schedule ---------------------------------------------------------------------------


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


YESTERDAY = TODAY - dt.timedelta(days=1)
TOMORROW = TODAY + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("now", "last_success", "expected"),
    [
        # After today's 06:00: synced since then -> tomorrow 06:00; not synced -> now.
        (at(TODAY, 12), None, at(TODAY, 12)),
        (at(TODAY, 12), at(TODAY, 5, 59), at(TODAY, 12)),
        (at(TODAY, 12), at(YESTERDAY, 23), at(TODAY, 12)),
        (at(TODAY, 12), at(TODAY, 6), at(TOMORROW, 6)),
        (at(TODAY, 12), at(TODAY, 7), at(TOMORROW, 6)),
        # Before today's 06:00: the latest sync time was yesterday's.
        (at(TODAY, 5), at(YESTERDAY, 7), at(TODAY, 6)),
        (at(TODAY, 5), at(TODAY, 4), at(TODAY, 6)),
        (at(TODAY, 5), at(YESTERDAY, 5), at(TODAY, 5)),
        (at(TODAY, 5), None, at(TODAY, 5)),
        # Exactly at the sync time: today's run is due.
        (at(TODAY, 6), at(TODAY, 5), at(TODAY, 6)),
        (at(TODAY, 6), at(TODAY, 6), at(TOMORROW, 6)),
    ],
)
def test_next_sync_at(
    reading_core: Core,
    clock: Clock,
    now: dt.datetime,
    last_success: dt.datetime | None,
    expected: dt.datetime,
) -> None:
    clock.now = now
    assert reading_core.settings.sync_time == dt.time(6, 0)
    assert sync.next_sync_at(reading_core, last_success) == expected


def test_the_sync_time_comes_from_the_settings(
    make_core: Callable[..., Core], sandbox: SandboxServer, clock: Clock
) -> None:
    core = make_core(sandbox, sync_time=dt.time(21, 30))
    clock.now = at(TODAY, 12)
    assert sync.last_sync_time(core, at(TODAY, 12)) == at(YESTERDAY, 21, 30)
    assert sync.last_sync_time(core, at(TODAY, 21, 30)) == at(TODAY, 21, 30)
    assert sync.last_sync_time(core, at(TODAY, 23)) == at(TODAY, 21, 30)
    assert sync.next_sync_at(core, at(YESTERDAY, 22)) == at(TODAY, 21, 30)
    assert sync.next_sync_at(core, at(YESTERDAY, 21)) == at(TODAY, 12)
    clock.now = at(TODAY, 22)
    assert sync.next_sync_at(core, at(YESTERDAY, 22)) == at(TODAY, 22)
    assert sync.next_sync_at(core, at(TODAY, 21, 45)) == at(TOMORROW, 21, 30)


def test_last_success_and_runs_of_one_connection(
    core: Core, admin: Actor, clock: Clock, member: Actor
) -> None:
    first = connect_and_link(core, admin, username="reader-one+accounts=1+years=0.1")
    second = connect_and_link(core, admin, username="reader-two+accounts=1+years=0.1")
    assert first.last_success_at is None
    assert sync.next_sync_at(core, first.last_success_at) == clock.now
    one = sync.sync_connection(core, first.id, poller=FAST)
    clock.advance(seconds=60)
    two = sync.sync_connection(core, second.id, poller=FAST)
    assert one.status is two.status is RunStatus.SUCCEEDED
    assert [r.id for r in sync.sync_runs(core, admin)] == [two.id, one.id]
    assert [r.id for r in sync.sync_runs(core, member, connection_id=first.id)] == [one.id]
    assert [r.id for r in sync.sync_runs(core, admin, connection_id=second.id)] == [two.id]
    assert sync.sync_runs(core, admin, connection_id=2**31 - 1) == []
    seen = connect.get_connection(core, member, first.id)
    assert seen.last_success_at == clock.now - dt.timedelta(seconds=60)
    assert not seen.needs_login
    assert sync.next_sync_at(core, seen.last_success_at) == at(TOMORROW, 6)
    assert [v.last_success_at for v in connect.list_connections(core, admin)] == [
        clock.now - dt.timedelta(seconds=60),
        clock.now,
    ]
    # Another family sees none of these runs, even by connection.
    joneses = new_family(core, "The Joneses", "jones@example.com")
    assert sync.sync_runs(core, joneses) == []
    assert sync.sync_runs(core, joneses, connection_id=first.id) == []


# --- credentials ----------------------------------------------------------------------------------


def stored_credentials(core: Core, family_id: int) -> tuple[str, str, str | None, str | None]:
    with core.session() as session:
        row = session.scalars(
            select(ProviderCredentials).where(ProviderCredentials.family_id == family_id)
        ).one()
        return (
            row.user_id,
            core.vault.decrypt_text(row.access_key_enc),
            row.base_url,
            row.customer_id,
        )


def test_save_credentials_falls_back_to_the_saved_values(
    make_core: Callable[..., Core], sandbox: SandboxServer, clock: Clock
) -> None:
    # The settings point nowhere: only the saved base URL reaches the sandbox.
    core = make_core(sandbox, sophtron_base_url="http://127.0.0.1:9/api")
    actor = new_family(core)
    with pytest.raises(BadInput) as caught:
        credentials.save_credentials(core, actor)
    assert caught.value.field == "user_id"
    with pytest.raises(BadInput) as caught:
        credentials.save_credentials(core, actor, USER_ID)
    assert caught.value.field == "access_key"
    assert credentials.credentials_status(core, actor) is None

    first = credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY, sandbox.url)
    assert first.user_id == USER_ID
    assert first.base_url == sandbox.url
    assert first.customer_id
    assert first.verified_at == clock.now
    saved = stored_credentials(core, actor.family_id)
    assert saved == (USER_ID, ACCESS_KEY, sandbox.url, first.customer_id)
    spent = quota.usage(core, actor.family_id)
    assert spent > 0

    # Nothing given: the saved values are verified again (Sophtron is asked again).
    clock.advance(seconds=90)
    again = credentials.save_credentials(core, actor)
    assert again.verified_at == clock.now
    assert (again.user_id, again.base_url, again.customer_id) == (
        USER_ID,
        sandbox.url,
        first.customer_id,
    )
    assert stored_credentials(core, actor.family_id) == saved
    assert quota.usage(core, actor.family_id) > spent
    # Blank values count as nothing given.
    assert credentials.save_credentials(core, actor, "", "", "").customer_id == first.customer_id

    # One value changed, the others saved: a new user id with the saved key is verified as such,
    # and Sophtron refuses the pair; the saved credentials stay.
    with pytest.raises(BadInput) as caught:
        credentials.save_credentials(core, actor, OTHER_USER_ID)
    assert caught.value.code == "invalid_credentials"
    assert stored_credentials(core, actor.family_id) == saved
    # A malformed key is refused before Sophtron is asked, naming the field.
    used = quota.usage(core, actor.family_id)
    with pytest.raises(BadInput) as caught:
        credentials.save_credentials(core, actor, access_key="not base64!")
    assert caught.value.field == "access_key"
    assert "Access Key" in caught.value.message
    assert quota.usage(core, actor.family_id) == used
    assert stored_credentials(core, actor.family_id) == saved

    # Another family has nothing saved to fall back on.
    joneses = new_family(core, "The Joneses", "jones@example.com")
    with pytest.raises(BadInput) as caught:
        credentials.save_credentials(core, joneses)
    assert caught.value.field == "user_id"

    credentials.remove_credentials(core, actor)
    with pytest.raises(BadInput):
        credentials.save_credentials(core, actor)
    assert credentials.credentials_status(core, actor) is None


# --- first run and people -------------------------------------------------------------------------


def test_first_run_is_refused_once_anyone_exists(reading_core: Core) -> None:
    core = reading_core
    assert not families.is_set_up(core)
    with pytest.raises(BadInput) as caught:
        families.first_run(core, "The Smiths", "admin@example.com", "short")
    assert caught.value.field == "password"
    with pytest.raises(BadInput):
        families.first_run(core, "  ", "admin@example.com", PASSWORD)
    assert not families.is_set_up(core)

    first = families.first_run(core, "The Smiths", "Admin@Example.com", PASSWORD)
    assert first.role is Role.ADMIN
    assert first.email == "admin@example.com"
    assert families.is_set_up(core)
    for email in ("other@example.com", "admin@example.com"):
        with pytest.raises(Conflict) as refused:
            families.first_run(core, "Others", email, PASSWORD)
        assert refused.value.code == "set_up_already"
    assert [f.name for f in families.families(core)] == ["The Smiths"]
    assert families.authenticate(core, "admin@example.com", PASSWORD) == first
    # More families come from an admin (the CLI), never from a second first run.
    second = families.create_family(core, "The Joneses", "jones@example.com", PASSWORD)
    assert second.family_id != first.family_id
    with pytest.raises(Conflict):
        families.first_run(core, "Third", "third@example.com", PASSWORD)


def test_list_users_is_scoped_to_the_family(reading_core: Core) -> None:
    core = reading_core
    smiths = new_family(core)
    joneses = new_family(core, "The Joneses", "jones@example.com")
    kid = families.add_user(core, smiths, "kid@example.com", PASSWORD, Role.MEMBER)
    partner = families.add_user(core, joneses, "partner@example.com", PASSWORD, Role.ADMIN)
    grandma = families.add_user(core, smiths, "grandma@example.com", PASSWORD, Role.ADMIN)
    assert families.list_users(core, smiths) == [smiths, kid, grandma]
    assert families.list_users(core, kid) == [smiths, kid, grandma]
    assert families.list_users(core, joneses) == [joneses, partner]
    families.set_role(core, smiths, kid.user_id, Role.ADMIN)
    assert [u.role for u in families.list_users(core, grandma)] == [Role.ADMIN] * 3
    with pytest.raises(NotFound):
        families.set_role(core, joneses, kid.user_id, Role.MEMBER)


def test_autocommit_blocks_nest_on_one_connection(
    reading_core: Core, make_core: Callable[..., Core], sandbox: SandboxServer
) -> None:
    """A request's reads (who sends it, then its page) check out one connection between them:
    an autocommit block opened inside another on the same thread runs on the outer block's
    connection. A block on another thread, or of another core, has one of its own."""
    core = reading_core
    smiths = new_family(core)
    checkouts: list[int] = []
    event.listen(core.engine, "checkout", lambda *_: checkouts.append(threading.get_ident()))
    with core.autocommit() as outer:
        with core.autocommit() as inner:
            assert inner is outer
        assert families.get_actor(core, smiths.user_id) == smiths
        assert accounts.list_transactions(core, smiths) == []
        assert checkouts == [threading.get_ident()]
        with ThreadPoolExecutor(1) as pool:
            elsewhere = pool.submit(lambda: families.get_actor(core, smiths.user_id)).result()
        assert elsewhere == smiths
        assert len(checkouts) == 2
        assert checkouts[1] != threading.get_ident()
        other = make_core(sandbox)
        with other.autocommit() as theirs:
            assert theirs is not outer
            assert theirs.engine is other.engine
    with core.autocommit() as later:
        assert later is not outer
    assert len(checkouts) == 3
