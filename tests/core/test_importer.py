"""The importer on both databases: idempotent, exact, duplicate-free, and the matching rules."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from sophsync.core.app import Core
from sophsync.core.importer import (
    ImportCounts,
    fingerprint,
    import_transactions,
    to_decimal,
    to_minor,
)
from sophsync.sandbox import SandboxServer
from sophsync.sophtron.models import Transaction as SophtronTransaction
from sophsync.store.models import Account, Family, Transaction, TxnStatus

START = dt.date(2026, 10, 1)
END = dt.date(2026, 11, 22)
DAY = dt.date(2026, 11, 10)

PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def db(make_core: Callable[..., Core], sandbox: SandboxServer) -> Core:
    """A core on the test's database; the importer itself sends no Sophtron request."""
    return make_core(sandbox)


def new_account(core: Core, *, currency: str = "USD", invert_sign: bool = False) -> int:
    with core.session() as session:
        family = Family(name="The Importers")
        session.add(family)
        session.flush()
        account = Account(
            family_id=family.id,
            name="Everyday",
            currency=currency,
            invert_sign=invert_sign,
        )
        session.add(account)
        session.flush()
        return account.id


@pytest.fixture
def account_id(db: Core) -> int:
    return new_account(db)


def txn(
    provider_id: str,
    amount: Any,
    *,
    day: dt.date = DAY,
    description: str = "JOE'S DINER SPRINGFIELD",
    pending: bool = False,
    post_day: dt.date | None = None,
    currency: str | None = "$",
    kind: str | None = None,
    **extra: Any,
) -> SophtronTransaction:
    """A Sophtron transaction as the API sends it (PascalCase keys)."""
    if kind is None and not isinstance(amount, str | type(None)):
        kind = "DEBIT" if amount < 0 else "CREDIT"
    data: dict[str, Any] = {
        "TransactionID": provider_id,
        "ID": f"record-{provider_id}",
        "Status": "Pending" if pending else "Posted",
        "Type": kind,
        "Amount": amount,
        "Date": f"{day.isoformat()}T00:00:00",
        "TransactionDate": f"{day.isoformat()}T00:00:00",
        "PostDate": None if pending else f"{(post_day or day).isoformat()}T00:00:00",
        "Description": description,
        "Merchant": "Joe's Diner",
        "Category": "Restaurants",
    }
    if currency is not None:
        data["Currency"] = currency
    data.update(extra)
    return SophtronTransaction.model_validate(data)


def run_import(
    core: Core,
    account_id: int,
    transactions: Sequence[SophtronTransaction],
    start: dt.date = START,
    end: dt.date = END,
) -> ImportCounts:
    with core.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return import_transactions(session.connection(), account, transactions, start, end)


def rows(core: Core, account_id: int) -> list[Transaction]:
    with core.session() as session:
        return list(
            session.scalars(
                select(Transaction)
                .where(Transaction.account_id == account_id)
                .order_by(Transaction.id)
            )
        )


def active(core: Core, account_id: int) -> list[Transaction]:
    return [row for row in rows(core, account_id) if row.status == TxnStatus.ACTIVE.value]


_SNAPSHOT_COLUMNS = [
    column
    for column in Transaction.__table__.columns
    if column.name not in {"created_at", "updated_at"}
]


def snapshot(core: Core, account_id: int) -> list[tuple[Any, ...]]:
    """Every column of the account's rows except the timestamps."""
    with core.session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(*_SNAPSHOT_COLUMNS)
                .where(Transaction.account_id == account_id)
                .order_by(Transaction.id)
            )
        ]


@contextmanager
def writes(core: Core) -> Iterator[list[str]]:
    """The INSERT / UPDATE / DELETE statements the core sends inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            seen.append(statement)

    sa.event.listen(core.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(core.engine, "before_cursor_execute", record)


def counts(result: ImportCounts) -> tuple[int, int, int, int]:
    return (result.added, result.updated, result.unchanged, result.removed)


# --- inserting and re-importing -----------------------------------------------------------------


def test_insert_stores_every_field(db: Core, account_id: int) -> None:
    result = run_import(
        db,
        account_id,
        [
            txn(
                "t1",
                Decimal("-12.34"),
                post_day=DAY + dt.timedelta(days=1),
                CheckNum="1042",
                Memo="table 7",
            ),
            txn("t2", Decimal("2500.00"), description="PAYROLL ACME", day=DAY - dt.timedelta(5)),
        ],
    )
    assert counts(result) == (2, 0, 0, 0)
    first, second = rows(db, account_id)
    assert first.provider_id == "t1"
    assert first.amount_minor == -1234
    assert first.currency == "USD"
    assert first.date == DAY
    assert first.posted_date == DAY + dt.timedelta(days=1)
    assert first.pending is False
    assert first.description == "JOE'S DINER SPRINGFIELD"
    assert first.merchant == "Joe's Diner"
    assert first.category == "Restaurants"
    assert first.check_number == "1042"
    assert first.memo == "table 7"
    assert first.status == TxnStatus.ACTIVE.value
    assert first.deleted is False
    assert first.previous_ids is None
    assert first.fingerprint == fingerprint(DAY, -1234, "JOE'S DINER SPRINGFIELD")
    assert (second.provider_id, second.amount_minor, second.date) == (
        "t2",
        250000,
        DAY - dt.timedelta(5),
    )


def test_reimporting_the_same_transactions_changes_nothing(db: Core, account_id: int) -> None:
    batch = [
        txn("a", Decimal("-4.50"), description="BLUE BOTTLE COFFEE"),
        txn("b", Decimal("-61.02"), pending=True, description="SHELL OIL 5521"),
        txn("c", Decimal("1200.00"), description="PAYROLL ACME", day=DAY - dt.timedelta(3)),
    ]
    assert counts(run_import(db, account_id, batch)) == (3, 0, 0, 0)
    before = snapshot(db, account_id)
    with writes(db) as statements:
        again = run_import(db, account_id, batch)
    assert counts(again) == (0, 0, 3, 0)
    assert statements == []
    assert snapshot(db, account_id) == before


def test_only_the_rows_that_changed_are_written(db: Core, account_id: int) -> None:
    """A re-sync reads its window's rows as plain values and writes back only the ones whose
    values changed, in one statement: their ``updated_at`` moves, the others' stays."""
    batch = [
        txn("a", Decimal("-4.50"), description="BLUE BOTTLE COFFEE"),
        txn("b", Decimal("-61.02"), description="SHELL OIL 5521"),
        txn("c", Decimal("1200.00"), description="PAYROLL ACME", day=DAY - dt.timedelta(3)),
    ]
    run_import(db, account_id, batch)
    stamps = {row.provider_id: row.updated_at for row in rows(db, account_id)}
    changed = [batch[0], txn("b", Decimal("-63.10"), description="SHELL OIL 5521"), batch[2]]
    with writes(db) as statements:
        result = run_import(db, account_id, changed)
    assert counts(result) == (0, 1, 2, 0)
    assert [statement.split(None, 1)[0].upper() for statement in statements] == ["UPDATE"]
    after = {row.provider_id: row for row in rows(db, account_id)}
    assert after["b"].amount_minor == -6310
    assert after["b"].fingerprint == fingerprint(DAY, -6310, "SHELL OIL 5521")
    assert after["b"].updated_at > stamps["b"]
    assert {key: after[key].updated_at for key in "ac"} == {key: stamps[key] for key in "ac"}


def test_a_first_sync_larger_than_a_query_can_name_imports_whole(db: Core, account_id: int) -> None:
    """66,000 new transactions in one window: more ids than one PostgreSQL query may carry
    (65,535 parameters), so the importer looks them up in parts. Imported again, none is new."""
    many = [
        txn(f"bulk-{index}", -(index % 5000 + 1), description=f"PURCHASE {index}")
        for index in range(66_000)
    ]
    assert counts(run_import(db, account_id, many)) == (66_000, 0, 0, 0)
    assert counts(run_import(db, account_id, many)) == (0, 0, 66_000, 0)
    with db.session() as session:
        total = session.scalar(
            select(sa.func.sum(Transaction.amount_minor)).where(
                Transaction.account_id == account_id
            )
        )
    assert total == -sum((index % 5000 + 1) * 100 for index in range(66_000))


def test_changed_amount_and_description_update_the_row(db: Core, account_id: int) -> None:
    run_import(db, account_id, [txn("a", Decimal("-4.50"), description="BLUE BOTTLE")])
    result = run_import(
        db, account_id, [txn("a", Decimal("-5.25"), description="BLUE BOTTLE COFFEE #12")]
    )
    assert counts(result) == (0, 1, 0, 0)
    (row,) = rows(db, account_id)
    assert row.provider_id == "a"
    assert row.amount_minor == -525
    assert row.description == "BLUE BOTTLE COFFEE #12"
    assert row.fingerprint == fingerprint(DAY, -525, "BLUE BOTTLE COFFEE #12")


def test_pending_then_posted_with_the_same_id_is_one_row(db: Core, account_id: int) -> None:
    run_import(db, account_id, [txn("p1", Decimal("-30.00"), pending=True)])
    (pending,) = rows(db, account_id)
    assert pending.pending is True
    assert pending.posted_date is None

    post_day = DAY + dt.timedelta(days=2)
    result = run_import(db, account_id, [txn("p1", Decimal("-30.00"), post_day=post_day)])
    assert counts(result) == (0, 1, 0, 0)
    (posted,) = rows(db, account_id)
    assert posted.id == pending.id
    assert posted.pending is False
    assert posted.posted_date == post_day
    assert posted.status == TxnStatus.ACTIVE.value


def test_pending_posted_under_a_new_id_with_a_tip_is_one_row(db: Core, account_id: int) -> None:
    run_import(db, account_id, [txn("auth-1", Decimal("-40.00"), pending=True)])
    post_day = DAY + dt.timedelta(days=2)
    result = run_import(
        db, account_id, [txn("post-1", Decimal("-48.00"), post_day=post_day)]
    )  # a 20% tip
    assert counts(result) == (0, 1, 0, 0)
    (row,) = rows(db, account_id)
    assert row.provider_id == "post-1"
    assert json.loads(row.previous_ids or "[]") == ["auth-1"]
    assert row.amount_minor == -4800
    assert row.pending is False
    assert row.posted_date == post_day
    assert row.status == TxnStatus.ACTIVE.value

    again = run_import(db, account_id, [txn("post-1", Decimal("-48.00"), post_day=post_day)])
    assert counts(again) == (0, 0, 1, 0)
    assert len(rows(db, account_id)) == 1


def test_posted_amount_far_from_the_pending_one_is_a_new_transaction(
    db: Core, account_id: int
) -> None:
    run_import(db, account_id, [txn("auth-1", Decimal("-40.00"), pending=True)])
    result = run_import(db, account_id, [txn("post-1", Decimal("-90.00"))])
    assert counts(result) == (1, 0, 0, 1)
    by_id = {row.provider_id: row.status for row in rows(db, account_id)}
    assert by_id == {"auth-1": TxnStatus.REMOVED.value, "post-1": TxnStatus.ACTIVE.value}


def test_reissued_id_is_not_a_duplicate(db: Core, account_id: int) -> None:
    run_import(db, account_id, [txn("old", Decimal("-15.99"), description="NETFLIX.COM")])
    result = run_import(db, account_id, [txn("new", Decimal("-15.99"), description="NETFLIX.COM")])
    assert counts(result) == (0, 1, 0, 0)
    (row,) = rows(db, account_id)
    assert row.provider_id == "new"
    assert json.loads(row.previous_ids or "[]") == ["old"]
    assert row.status == TxnStatus.ACTIVE.value


def test_reissued_id_with_a_shifted_date_is_not_a_duplicate(db: Core, account_id: int) -> None:
    run_import(db, account_id, [txn("old", Decimal("-15.99"), description="NETFLIX.COM")])
    shifted = DAY + dt.timedelta(days=2)
    result = run_import(
        db, account_id, [txn("new", Decimal("-15.99"), description="NETFLIX.COM", day=shifted)]
    )
    assert counts(result) == (0, 1, 0, 0)
    (row,) = rows(db, account_id)
    assert (row.provider_id, row.date, row.status) == ("new", shifted, TxnStatus.ACTIVE.value)
    assert json.loads(row.previous_ids or "[]") == ["old"]


def test_disappearing_pending_row_is_removed(db: Core, account_id: int) -> None:
    run_import(
        db,
        account_id,
        [
            txn("keep", Decimal("-9.00"), description="CHIPOTLE"),
            txn("gone", Decimal("-75.00"), pending=True, description="HOTEL HOLD"),
        ],
    )
    result = run_import(db, account_id, [txn("keep", Decimal("-9.00"), description="CHIPOTLE")])
    assert counts(result) == (0, 0, 1, 1)
    status = {row.provider_id: row.status for row in rows(db, account_id)}
    assert status == {"keep": TxnStatus.ACTIVE.value, "gone": TxnStatus.REMOVED.value}

    # Removed once, counted once.
    again = run_import(db, account_id, [txn("keep", Decimal("-9.00"), description="CHIPOTLE")])
    assert counts(again) == (0, 0, 1, 0)

    # Reported again later: the same row comes back.
    back = run_import(
        db,
        account_id,
        [
            txn("keep", Decimal("-9.00"), description="CHIPOTLE"),
            txn("gone", Decimal("-75.00"), pending=True, description="HOTEL HOLD"),
        ],
    )
    assert counts(back) == (0, 1, 1, 0)
    assert len(rows(db, account_id)) == 2
    assert {row.status for row in rows(db, account_id)} == {TxnStatus.ACTIVE.value}


def test_rows_outside_the_window_are_never_removed(db: Core, account_id: int) -> None:
    early = START - dt.timedelta(days=3)  # inside the matching margin, outside the window
    older = START - dt.timedelta(days=60)
    late = END + dt.timedelta(days=2)
    run_import(
        db,
        account_id,
        [
            txn("early", Decimal("-1.00"), day=early, description="EARLY"),
            txn("older", Decimal("-2.00"), day=older, description="OLDER"),
            txn("late", Decimal("-3.00"), day=late, pending=True, description="LATE"),
            txn("inside", Decimal("-4.00"), description="INSIDE"),
        ],
        start=older,
        end=late,
    )
    assert len(rows(db, account_id)) == 4
    result = run_import(db, account_id, [])
    assert counts(result) == (0, 0, 0, 1)
    status = {row.provider_id: row.status for row in rows(db, account_id)}
    assert status == {
        "early": TxnStatus.ACTIVE.value,
        "older": TxnStatus.ACTIVE.value,
        "late": TxnStatus.ACTIVE.value,
        "inside": TxnStatus.REMOVED.value,
    }


def test_arrivals_outside_the_window_or_without_amount_or_date_are_ignored(
    db: Core, account_id: int
) -> None:
    result = run_import(
        db,
        account_id,
        [
            txn("before", Decimal("-1.00"), day=START - dt.timedelta(days=1)),
            txn("after", Decimal("-1.00"), day=END + dt.timedelta(days=1)),
            txn("no-amount", None),
            SophtronTransaction.model_validate(
                {"TransactionID": "no-date", "Amount": "-3.00", "Description": "X"}
            ),
            txn("first-day", Decimal("-2.00"), day=START, description="FIRST"),
            txn("last-day", Decimal("-2.00"), day=END, description="LAST"),
        ],
    )
    assert counts(result) == (2, 0, 0, 0)
    assert sorted(row.provider_id or "" for row in rows(db, account_id)) == [
        "first-day",
        "last-day",
    ]


def test_a_deleted_row_stays_deleted(db: Core, account_id: int) -> None:
    run_import(db, account_id, [txn("d1", Decimal("-8.00"), description="ATM FEE")])
    with db.session() as session:
        row = session.scalars(select(Transaction).where(Transaction.account_id == account_id)).one()
        row.deleted = True

    run_import(db, account_id, [txn("d1", Decimal("-8.00"), description="ATM FEE")])
    (row,) = rows(db, account_id)
    assert row.deleted is True

    # Even when Sophtron re-issues its id or edits it, it is not duplicated nor undeleted.
    run_import(db, account_id, [txn("d2", Decimal("-8.00"), description="ATM FEE")])
    run_import(db, account_id, [txn("d2", Decimal("-8.50"), description="ATM FEE")])
    (row,) = rows(db, account_id)
    assert row.deleted is True
    assert row.provider_id == "d2"
    assert row.amount_minor == -850


@pytest.mark.parametrize("posted_first", [True, False])
def test_an_id_reported_again_after_it_was_replaced_imports_idempotently(
    db: Core, account_id: int, posted_first: bool
) -> None:
    """The bank lists the authorisation again next to the posted record: importing the same
    list twice must not fail and must change nothing the second time."""
    run_import(db, account_id, [txn("auth", Decimal("-20.00"), pending=True)])
    run_import(db, account_id, [txn("post", Decimal("-24.00"))])
    both = [txn("post", Decimal("-24.00")), txn("auth", Decimal("-20.00"), pending=True)]
    if not posted_first:
        both.reverse()
    run_import(db, account_id, both)
    before = snapshot(db, account_id)
    again = run_import(db, account_id, both)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert snapshot(db, account_id) == before
    assert sorted(row.provider_id or "" for row in active(db, account_id)) == ["auth", "post"]


# --- signs, currencies and exact amounts ----------------------------------------------------------


def test_invert_sign_flips_amounts(db: Core) -> None:
    inverted = new_account(db, invert_sign=True)
    run_import(
        db,
        inverted,
        [
            txn("out", Decimal("-12.34"), description="OUT"),
            txn("in", Decimal("56.78"), description="IN"),
        ],
    )
    amounts = {row.provider_id: row.amount_minor for row in rows(db, inverted)}
    assert amounts == {"out": 1234, "in": -5678}


def test_debit_with_a_positive_amount_is_stored_negative(db: Core, account_id: int) -> None:
    run_import(
        db,
        account_id,
        [
            txn("debit", "12.34", kind="DEBIT", description="A"),
            txn("debit-lower", "7.00", kind="debit", description="B"),
            txn("credit", "12.34", kind="CREDIT", description="C"),
            txn("signed-debit", "-3.00", kind="DEBIT", description="D"),
            txn("no-type", "5.00", description="E"),
        ],
    )
    amounts = {row.provider_id: row.amount_minor for row in rows(db, account_id)}
    assert amounts == {
        "debit": -1234,
        "debit-lower": -700,
        "credit": 1234,
        "signed-debit": -300,
        "no-type": 500,
    }


def test_currency_symbols_map_to_iso_codes(db: Core) -> None:
    cad_account = new_account(db, currency="CAD")
    run_import(
        db,
        cad_account,
        [
            txn("usd", Decimal("-1.00"), currency="$", description="USD"),
            txn("cad", Decimal("-2.00"), currency="CA$", description="CAD"),
            txn("missing", Decimal("-3.00"), currency=None, description="MISSING"),
            txn("empty", Decimal("-4.00"), currency="", description="EMPTY"),
        ],
    )
    found = {row.provider_id: (row.currency, row.amount_minor) for row in rows(db, cad_account)}
    assert found == {
        "usd": ("USD", -100),
        "cad": ("CAD", -200),
        "missing": ("CAD", -300),
        "empty": ("CAD", -400),
    }


def test_missing_currency_uses_the_account_currency_precision(db: Core) -> None:
    yen = new_account(db, currency="JPY")
    dinar = new_account(db, currency="KWD")
    run_import(db, yen, [txn("y", "-1500", kind="DEBIT", currency=None)])
    run_import(db, dinar, [txn("k", "-1.234", kind="DEBIT", currency=None)])
    ((yen_row,), (dinar_row,)) = rows(db, yen), rows(db, dinar)
    assert (yen_row.currency, yen_row.amount_minor) == ("JPY", -1500)
    assert (dinar_row.currency, dinar_row.amount_minor) == ("KWD", -1234)


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        (0.1, 10),
        (0.2, 20),
        (0.1 + 0.2, 30),  # 0.30000000000000004 as a JSON number
        (0.29, 29),
        (1.13, 113),
        (4.35, 435),
        (8.2, 820),
        (19.99, 1999),
        (-1234567.89, -123456789),
        ("0.07", 7),
        ("$1,250.35", 125035),
        (Decimal("0.10") + Decimal("0.20"), 30),
    ],
)
def test_amounts_are_exact_minor_units(db: Core, account_id: int, amount: Any, minor: int) -> None:
    run_import(db, account_id, [txn("x", amount, kind="CREDIT")])
    (row,) = rows(db, account_id)
    assert row.amount_minor == minor
    assert isinstance(row.amount_minor, int)


def test_small_amounts_add_up_exactly(db: Core, account_id: int) -> None:
    run_import(
        db,
        account_id,
        [
            txn("a", 0.1, kind="CREDIT", description="A"),
            txn("b", 0.2, kind="CREDIT", description="B"),
            txn("c", -0.3, kind="DEBIT", description="C"),
        ],
    )
    with db.session() as session:
        total = session.scalar(
            select(sa.func.sum(Transaction.amount_minor)).where(
                Transaction.account_id == account_id
            )
        )
    assert total == 0
    assert to_decimal(sum(row.amount_minor for row in rows(db, account_id)[:2]), "USD") == Decimal(
        "0.30"
    )


@pytest.mark.parametrize(
    ("currency", "amount", "minor", "text"),
    [
        ("USD", Decimal("12.34"), 1234, "12.34"),
        ("USD", Decimal("-0.05"), -5, "-0.05"),
        ("USD", Decimal("0.10") + Decimal("0.20"), 30, "0.30"),
        ("JPY", Decimal("1500"), 1500, "1500"),
        ("JPY", Decimal("-7"), -7, "-7"),
        ("KWD", Decimal("1.234"), 1234, "1.234"),
        ("KWD", Decimal("-0.001"), -1, "-0.001"),
    ],
)
def test_to_minor_and_to_decimal_round_trip(
    currency: str, amount: Decimal, minor: int, text: str
) -> None:
    assert to_minor(amount, currency) == minor
    assert to_minor(str(amount), currency) == minor
    assert to_decimal(minor, currency) == amount
    assert str(to_decimal(minor, currency)) == text


def test_to_minor_rounds_half_even_past_the_precision() -> None:
    assert to_minor("0.125", "USD") == 12
    assert to_minor("0.135", "USD") == 14
    assert to_minor("2.5", "JPY") == 2
    assert to_minor("3.5", "JPY") == 4
    assert to_minor("0.0005", "KWD") == 0
    assert to_minor(7, "USD") == 700


@given(
    minor=st.integers(min_value=-(10**15), max_value=10**15),
    currency=st.sampled_from(["USD", "JPY", "KWD", "CAD", "BHD", "KRW"]),
)
def test_minor_units_round_trip_for_any_amount(minor: int, currency: str) -> None:
    assert to_minor(to_decimal(minor, currency), currency) == minor
    assert to_minor(str(to_decimal(minor, currency)), currency) == minor


# --- properties -----------------------------------------------------------------------------------

DESCRIPTIONS = [
    "JOE'S DINER SPRINGFIELD",
    "BLUE BOTTLE COFFEE",
    "SHELL OIL 5521",
    "PAYROLL ACME",
    "UBER *TRIP",
]
WINDOW_DAYS = (END - START).days

entry = st.tuples(
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=8),  # id
    st.integers(min_value=0, max_value=WINDOW_DAYS),  # day offset
    st.integers(min_value=-500_000, max_value=500_000),  # cents
    st.booleans(),  # pending
    st.sampled_from(DESCRIPTIONS),
)
entries = st.lists(entry, max_size=14, unique_by=lambda item: item[0])


def build(item: tuple[str, int, int, bool, str]) -> SophtronTransaction:
    provider_id, offset, cents, pending, description = item
    return txn(
        provider_id,
        to_decimal(cents, "USD"),
        day=START + dt.timedelta(days=offset),
        pending=pending,
        description=description,
    )


@PROPERTY
@given(batch=entries)
def test_sync_twice_equals_sync_once(
    db: Core, batch: list[tuple[str, int, int, bool, str]]
) -> None:
    account = new_account(db)
    transactions = [build(item) for item in batch]
    first = run_import(db, account, transactions)
    assert counts(first) == (len(batch), 0, 0, 0)
    once = snapshot(db, account)
    second = run_import(db, account, transactions)
    assert (second.added, second.updated, second.removed) == (0, 0, 0)
    assert second.unchanged == len(batch)
    assert snapshot(db, account) == once
    assert sorted(row.amount_minor for row in rows(db, account)) == sorted(
        item[2] for item in batch
    )


@PROPERTY
@given(data=st.data(), batch=entries)
def test_reimporting_a_subset_with_postings_never_duplicates(
    db: Core, data: st.DataObject, batch: list[tuple[str, int, int, bool, str]]
) -> None:
    account = new_account(db)
    run_import(db, account, [build(item) for item in batch])

    later: list[SophtronTransaction] = []
    for item in batch:
        if not data.draw(st.booleans(), label=f"keep {item[0]}"):
            continue
        provider_id, offset, cents, pending, description = item
        if pending and data.draw(st.booleans(), label=f"post {provider_id}"):
            new_id = data.draw(st.booleans(), label=f"new id {provider_id}")
            tip = data.draw(st.sampled_from([0, 15, 20]), label=f"tip {provider_id}")
            cents = cents + cents * tip // 100
            provider_id = f"{provider_id}-posted" if new_id else provider_id
            pending = False
        later.append(build((provider_id, offset, cents, pending, description)))

    result = run_import(db, account, later)
    assert result.added + result.updated + result.unchanged == len(later)
    current = active(db, account)
    assert len(current) == len(later)
    assert sorted(row.provider_id or "" for row in current) == sorted(t.provider_id for t in later)
    assert len(rows(db, account)) - result.removed <= len(batch) + result.added
    arrived = {t.provider_id: (to_minor(t.signed_amount or 0, "USD"), t.pending) for t in later}
    assert {row.provider_id: (row.amount_minor, row.pending) for row in current} == arrived

    settled = snapshot(db, account)
    again = run_import(db, account, later)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert snapshot(db, account) == settled


def test_many_ids_stored_outside_the_window_are_found_not_duplicated(
    db: Core, account_id: int
) -> None:
    """More arrivals than one id query holds, each already stored weeks before the window
    under its id (the bank moved their dates): every one updates its row, none is added."""
    early = dt.date(2026, 1, 5)
    late = dt.date(2026, 3, 2)
    count = 10_050
    before = [
        txn(f"moved-{index}", -(index % 700 + 1), day=early, description=f"SHOP {index}")
        for index in range(count)
    ]
    assert counts(run_import(db, account_id, before, early, early)) == (count, 0, 0, 0)
    after = [
        txn(f"moved-{index}", -(index % 700 + 1), day=late, description=f"SHOP {index}")
        for index in range(count)
    ]
    # One more arrival is new; together they exceed the id query size.
    after.append(txn("brand-new", -5, day=late, description="NEW SHOP"))

    assert counts(run_import(db, account_id, after, late, late)) == (1, count, 0, 0)

    stored = rows(db, account_id)
    assert len(stored) == count + 1
    assert {row.date for row in stored} == {late}
    assert len({row.provider_id for row in stored}) == count + 1
