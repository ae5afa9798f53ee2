"""File exports: golden files, every format read back by an independent parser, the command.

The parsers are other people's code: ofxtools and ofxparse for OFX, quiffen for QIF, beancount's
loader, hledger and ledger for the journal, the standard csv module. What they read is compared
with the store itself (SQL over the tables, not the exporter's reader): counts, amounts, ids and
balances. Golden files pin the exact bytes of a small export; regenerate them with
``REGEN_GOLDEN=1`` after a deliberate change, and read the diff.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import ofxparse
import pytest
import quiffen
import sqlalchemy as sa
from beancount import loader
from beancount.core import data as bc
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ofxtools.Parser import OFXTree

from sophsync.cli import cli as main_cli
from sophsync.core.importer import exponent, to_decimal
from sophsync.errors import BadInput
from sophsync.exporters import files
from sophsync.exporters.source import OutputAccount, OutputTransaction, Selection
from sophsync.sandbox import SandboxServer
from sophsync.store.models import Account, AccountType, Transaction, TxnStatus
from tests.cli.test_money import cli, ok, one_line_error
from tests.outputs.conftest import Household

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("REGEN_GOLDEN") == "1"
SUFFIX = {"csv": "csv", "ofx": "ofx", "qif": "qif", "beancount": "beancount", "ledger": "journal"}

MAPPING = """\
# Account names for the golden export.
[accounts.1]
name = "Assets:Family:Checking"
ofx_acctid = "000123456789"
ofx_bankid = "021000021"

[accounts]
"sophsync-account-3" = "Liabilities:Family:Visa"

[categories]
Groceries = "Expenses:Food:Groceries"
"Coffee Shops" = "Expenses:Food:Coffee"

[defaults]
money_out = "Expenses:Other"
"""


# --- what the store holds -------------------------------------------------------------------


@dataclass
class Truth:
    """The store, read with SQL: per account id, its row and its active transactions."""

    accounts: dict[int, Account]
    transactions: dict[int, list[Transaction]]

    def posted(self, account_id: int) -> list[Transaction]:
        return [txn for txn in self.transactions[account_id] if not txn.pending]

    def total(self, account_id: int, *, pending: bool = True) -> Decimal:
        account = self.accounts[account_id]
        rows = self.transactions[account_id] if pending else self.posted(account_id)
        return to_decimal(sum(txn.amount_minor for txn in rows), account.currency)

    def balance(self, account_id: int) -> Decimal:
        account = self.accounts[account_id]
        return to_decimal(account.balance_minor, account.currency)

    def pending_total(self, account_id: int) -> Decimal:
        return self.total(account_id) - self.total(account_id, pending=False)


def truth(household: Household, start: dt.date | None = None, end: dt.date | None = None) -> Truth:
    with household.core.session() as session:
        accounts = {row.id: row for row in session.scalars(sa.select(Account))}
        query = sa.select(Transaction).where(
            Transaction.status == TxnStatus.ACTIVE.value, Transaction.deleted.is_(False)
        )
        if start is not None:
            query = query.where(Transaction.date >= start)
        if end is not None:
            query = query.where(Transaction.date <= end)
        rows: dict[int, list[Transaction]] = {account_id: [] for account_id in accounts}
        for row in session.scalars(query.order_by(Transaction.id)):
            rows[row.account_id].append(row)
        session.expunge_all()
    return Truth(accounts, rows)


def render(export: files.Export, fmt: str) -> str:
    buffer = io.StringIO()
    files.write(export, fmt, buffer)
    return buffer.getvalue()


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def amount_text(text: str) -> Decimal:
    """``56091.29 USD`` (or ``0``, which hledger prints without a commodity)."""
    return Decimal(text.split()[0])


# --- golden files ---------------------------------------------------------------------------


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        return
    assert path.exists(), f"{path} is missing; create it with REGEN_GOLDEN=1"
    assert text == path.read_bytes().decode("utf-8"), f"{name} differs from golden"


def test_golden_files(household: Household, tmp_path: Path) -> None:
    """A checking account and a card from 2026-10-15, named by a mapping file: the same bytes
    on both databases and on every run."""
    mapping = tmp_path / "accounts.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    export = files.prepare(
        household.core,
        household.admin,
        account_ids=[3, 1],
        start=dt.date(2026, 10, 15),
        mapping=mapping,
    )
    assert [account.id for account in export.accounts] == [1, 3]
    for fmt in files.FORMATS:
        text = render(export, fmt)
        assert render(export, fmt) == text
        golden(f"household.{SUFFIX[fmt]}", text)
    # The golden journals are valid for the tools they are for.
    entries, errors, _ = loader.load_file(str(GOLDEN / "household.beancount"))
    assert errors == []
    assert entries
    run("hledger", "-f", str(GOLDEN / "household.journal"), "check")
    run("ledger", "-f", str(GOLDEN / "household.journal"), "bal")


# --- every format read back, the full household ---------------------------------------------


def test_csv_read_back(household: Household) -> None:
    store = truth(household)
    text = render(files.prepare(household.core, household.admin), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == files.CSV_COLUMNS
    by_account: dict[int, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_account[int(row["account_id"])].append(row)
    for account_id, txns in store.transactions.items():
        got = by_account[account_id]
        assert len(got) == len(txns)
        assert sum(Decimal(row["amount"]) for row in got) == store.total(account_id)
        expected = {(f"sophsync-{t.id}", t.provider_id, t.amount_minor, t.pending) for t in txns}
        scale = 10 ** exponent(store.accounts[account_id].currency)
        assert {
            (
                row["sophsync_id"],
                row["sophtron_id"],
                int(Decimal(row["amount"]) * scale),
                row["pending"] == "true",
            )
            for row in got
        } == expected
        assert {row["account_name"] for row in got} <= {store.accounts[account_id].name}


# ofxparse reads OFX with BeautifulSoup's HTML parser and calls bs4 methods that bs4 now
# deprecates: both warnings come from inside ofxparse and say nothing about our file.
@pytest.mark.filterwarnings("ignore::bs4.XMLParsedAsHTMLWarning")
@pytest.mark.filterwarnings("ignore:Call to deprecated method:DeprecationWarning")
def test_ofx_read_back_by_ofxtools_and_ofxparse(household: Household, tmp_path: Path) -> None:
    store = truth(household)
    path = tmp_path / "household.ofx"
    files.write_file(files.prepare(household.core, household.admin), "ofx", path)

    tree = OFXTree()
    tree.parse(str(path))
    ofx = tree.convert()
    statements = {str(s.account.acctid): s for s in ofx.statements}
    assert set(statements) == {f"sophsync-account-{i}" for i in store.accounts}
    newest = max(a.balance_at for a in store.accounts.values() if a.balance_at is not None)
    assert ofx.signonmsgsrsv1.sonrs.dtserver == newest.replace(tzinfo=dt.UTC)
    for account_id, account in store.accounts.items():
        statement = statements[f"sophsync-account-{account_id}"]
        card = account.type == AccountType.CREDIT_CARD.value
        assert type(statement).__name__ == ("CCSTMTRS" if card else "STMTRS")
        posted = store.posted(account_id)
        listed = list(statement.banktranlist)
        assert len(listed) == len(posted)
        assert [t.fitid for t in listed] == [f"sophsync-{t.id}" for t in posted]
        assert [t.trnamt for t in listed] == [to_decimal(t.amount_minor, "USD") for t in posted]
        assert statement.ledgerbal.balamt == store.balance(account_id)
        if account.available_minor is None:
            assert statement.availbal is None
        else:
            assert statement.availbal.balamt == to_decimal(account.available_minor, "USD")
        for txn, row in zip(listed, posted, strict=True):
            assert txn.trntype == (
                "CHECK" if row.check_number else ("DEBIT" if row.amount_minor < 0 else "CREDIT")
            )
            assert len(txn.name) <= 32

    with path.open("rb") as handle:
        parsed = ofxparse.OfxParser.parse(handle)
    assert len(parsed.accounts) == len(store.accounts)
    for item in parsed.accounts:
        account_id = int(item.account_id.removeprefix("sophsync-account-"))
        posted = store.posted(account_id)
        got = item.statement.transactions
        assert len(got) == len(posted)
        assert {t.id for t in got} == {f"sophsync-{t.id}" for t in posted}
        assert sum(t.amount for t in got) == store.total(account_id, pending=False)
        assert item.statement.balance == store.balance(account_id)


def test_qif_read_back_by_quiffen(household: Household, tmp_path: Path) -> None:
    store = truth(household)
    export = files.prepare(household.core, household.admin)
    path = tmp_path / "household.qif"
    files.write_file(export, "qif", path)
    parsed = quiffen.Qif.parse(path, day_first=False)
    assert set(parsed.accounts) == set(export.names.names.values())
    for account_id, account in store.accounts.items():
        found = parsed.accounts[export.names.names[account_id]]
        got = [txn for txns in found.transactions.values() for txn in txns]
        txns = store.transactions[account_id]
        assert len(got) == len(txns)
        assert sum(txn.amount for txn in got) == store.total(account_id)
        # The stable id ends the memo.
        ids = [txn.memo.rsplit(" | ", 1)[-1] for txn in got]
        assert ids == [f"sophsync-{t.id}" for t in txns]
        assert [txn.date.date() for txn in got] == [t.date for t in txns]
        assert found.balance == store.balance(account_id)
        expected_type = {"depository": "Bank", "credit_card": "CCard"}.get(account.type)
        if expected_type is not None:
            assert found.account_type.value == expected_type


def test_beancount_loads_without_errors(household: Household) -> None:
    store = truth(household)
    export = files.prepare(household.core, household.admin)
    entries, errors, options = loader.load_string(render(export, "beancount"))
    assert errors == []
    assert options["operating_currency"] == ["USD"]
    accounts = {name: account_id for account_id, name in export.names.names.items()}
    sums: dict[int, Decimal] = defaultdict(Decimal)
    openings: dict[int, Decimal] = defaultdict(Decimal)
    ids: dict[int, list[tuple[str, str | None, bool]]] = defaultdict(list)
    balances: dict[int, bc.Balance] = {}
    for entry in entries:
        if isinstance(entry, bc.Transaction):
            for posting in entry.postings:
                if posting.account not in accounts:
                    continue
                assert posting.units is not None
                account_id = accounts[posting.account]
                if entry.narration == "Opening balance" and "sophsync_id" not in entry.meta:
                    openings[account_id] += posting.units.number
                    continue
                sums[account_id] += posting.units.number
                ids[account_id].append(
                    (entry.meta["sophsync_id"], entry.meta.get("sophtron_id"), entry.flag == "!")
                )
        elif isinstance(entry, bc.Balance):
            balances[accounts[entry.account]] = entry
    for account_id, account in store.accounts.items():
        txns = store.transactions[account_id]
        assert sums[account_id] == store.total(account_id)
        assert sorted(ids[account_id]) == sorted(
            (f"sophsync-{t.id}", t.provider_id, t.pending) for t in txns
        )
        # The assertion, the day after the balance date, is the bank's balance plus what is
        # still pending (the bank counts a transaction once it posts).
        assert account.balance_at is not None
        assert balances[account_id].date == account.balance_at.date() + dt.timedelta(days=1)
        expected = store.balance(account_id) + store.pending_total(account_id)
        assert balances[account_id].amount.number == expected
        assert openings[account_id] + sums[account_id] == expected


def hledger_balances(path: Path, *extra: str) -> dict[str, Decimal]:
    out = run("hledger", "-f", str(path), "bal", "-E", "-O", "csv", "--no-total", *extra)
    rows = list(csv.reader(io.StringIO(out)))[1:]
    return {account: amount_text(value) for account, value in rows}


def ledger_postings(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(run("ledger", "-f", str(path), "csv"))))


def test_journal_read_by_hledger_and_ledger(household: Household, tmp_path: Path) -> None:
    store = truth(household)
    export = files.prepare(household.core, household.admin)
    path = tmp_path / "household.journal"
    files.write_file(export, "ledger", path)
    names = export.names.names

    # hledger: balances (assertions checked while reading), then every transaction's tags.
    balances = hledger_balances(path)
    printed = json.loads(
        run("hledger", "-f", str(path), "print", "-O", "json"), parse_float=Decimal
    )
    tagged: dict[str, list[tuple[str, Decimal, str]]] = defaultdict(list)
    for txn in printed:
        tags = dict(txn["ttags"])
        if "sophsync-id" not in tags:
            continue
        for posting in txn["tpostings"]:
            (amount,) = posting["pamount"]
            quantity = Decimal(amount["aquantity"]["decimalMantissa"]).scaleb(
                -amount["aquantity"]["decimalPlaces"]
            )
            tagged[posting["paccount"]].append((tags["sophsync-id"], quantity, txn["tstatus"]))
    # ledger: every posting as CSV, its note holding the tags.
    ledger_sums: dict[str, Decimal] = defaultdict(Decimal)
    ledger_counts: Counter[str] = Counter()
    for _date, _code, _payee, account, _commodity, amount, _state, note in ledger_postings(path):
        ledger_sums[account] += Decimal(amount)
        if "sophsync-id:" in note:
            ledger_counts[account] += 1
    for account_id, txns in store.transactions.items():
        name = names[account_id]
        expected = store.balance(account_id) + store.pending_total(account_id)
        assert balances[name] == expected
        assert ledger_sums[name] == expected
        assert ledger_counts[name] == len(txns)
        got = sorted(tagged[name])
        assert got == sorted(
            (
                f"sophsync-{t.id}",
                to_decimal(t.amount_minor, t.currency),
                "Pending" if t.pending else "Cleared",
            )
            for t in txns
        )
    with path.open(encoding="utf-8") as handle:
        assertions = sum(" = " in line for line in handle)
    assert assertions == len(store.accounts)


def test_window_keeps_balances_right(household: Household, tmp_path: Path) -> None:
    """--from and --to cut the history: the opening balance is the balance before the window,
    the journals end the window on the balance the bank's figures imply, and no assertion that
    could not hold is written."""
    start, end = dt.date(2026, 3, 1), dt.date(2026, 6, 30)
    store = truth(household)
    window = truth(household, start, end)
    export = files.prepare(household.core, household.admin, start=start, end=end)
    entries, errors, _ = loader.load_string(render(export, "beancount"))
    assert errors == []
    assert not [entry for entry in entries if isinstance(entry, bc.Balance)]
    path = tmp_path / "window.journal"
    files.write_file(export, "ledger", path)
    balances = hledger_balances(path)
    for account_id in store.accounts:
        later = sum(t.amount_minor for t in store.posted(account_id) if t.date > end)
        expected = store.balance(account_id) - to_decimal(later, "USD")
        expected += window.pending_total(account_id)
        assert balances[export.names.names[account_id]] == expected
        assert export.openings[account_id].date == start
    run("ledger", "-f", str(path), "bal")
    # From a date only: the assertions hold again.
    export = files.prepare(household.core, household.admin, start=start)
    entries, errors, _ = loader.load_string(render(export, "beancount"))
    assert errors == []
    assert len([entry for entry in entries if isinstance(entry, bc.Balance)]) == 12
    files.write_file(export, "ledger", path)
    hledger_balances(path)
    run("ledger", "-f", str(path), "bal")


# --- names and the mapping file -------------------------------------------------------------


def _account(
    account_id: int,
    name: str,
    kind: AccountType = AccountType.DEPOSITORY,
    institution: str | None = "Sophtron Bank",
    currency: str = "USD",
    balance: int = 0,
) -> OutputAccount:
    return OutputAccount(
        id=account_id,
        stable_id=f"sophsync-account-{account_id}",
        name=name,
        type=kind,
        subtype=None,
        currency=currency,
        balance_minor=balance,
        available_minor=balance,
        balance_at=dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC),
        institution=institution,
        mask="0001",
    )


#: Two banks with the same account names, as in the household.
TWINS = (
    _account(1, "Primary Checking", institution="Sophtron Bank NoMFA"),
    _account(2, "High Yield Savings", institution="Sophtron Bank NoMFA"),
    _account(4, "Home Mortgage", AccountType.LOAN, institution="Sophtron Bank NoMFA"),
    _account(7, "Primary Checking"),
    _account(9, "Rewards Visa Signature", AccountType.CREDIT_CARD),
    _account(10, "Home Mortgage", AccountType.LOAN),
    _account(11, "Primary Checking"),
    _account(12, "Cash", institution=None),
)


def test_default_names_are_unique_and_legal() -> None:
    names = files.account_names(TWINS).names
    assert names == {
        1: "Assets:SophtronBankNoMFA:PrimaryChecking",
        2: "Assets:SophtronBankNoMFA:HighYieldSavings",
        4: "Liabilities:SophtronBankNoMFA:HomeMortgage",
        7: "Assets:SophtronBank:PrimaryChecking",
        9: "Liabilities:SophtronBank:RewardsVisaSignature",
        10: "Liabilities:SophtronBank:HomeMortgage",
        # The same bank and name: the newer account gets its id, the older keeps the name.
        11: "Assets:SophtronBank:PrimaryChecking-11",
        12: "Assets:Cash",
    }
    assert all(files.legal_account_name(name) for name in names.values())
    # A mapped name is kept; a default that collides with it steps aside.
    mapped = files.account_names(TWINS, {12: "Assets:SophtronBank:PrimaryChecking"}).names
    assert mapped[7] == "Assets:SophtronBank:PrimaryChecking-7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[accounts]\n42 = 'Assets:Gone'\n", "accounts.42: no account has this id"),
        ("[accounts]\n'Primary Checking' = 'Assets:X'\n", "several accounts have this name"),
        ("[accounts]\n1 = 'Assets:checking'\n", "accounts.1: 'Assets:checking' is not a valid"),
        ("[accounts]\n1 = 'Cash:Checking'\n", "accounts.1: 'Cash:Checking' is not a valid"),
        ("[accounts]\n1 = 'Assets:A'\n2 = 'Assets:A'\n", "Assets:A is already the name"),
        ("[accounts]\n1 = { name = 'Assets:A', color = 'red' }\n", "accounts.1.color"),
        ("[accounts]\n1 = { ofx_bankid = '0123456789' }\n", "accounts.1.ofx_bankid"),
        ("[categories]\nGroceries = 'Food'\n", "categories.Groceries"),
        ("[defaults]\nmoney = 'Expenses:X'\n", "defaults.money"),
        ("[colours]\n", "colours: unknown section"),
        ("[accounts\n", "not valid TOML"),
        ("[accounts]\n1 = 'Expenses:Uncategorized'\n", "also used as a counter account"),
    ],
)
def test_mapping_errors_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as raised:
        files.load_mapping(path, TWINS)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)
    assert raised.value.field == "accounts-map"


def test_mapping_in_json(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"accounts": {"Home Mortgage": "Liabilities:X"}}))
    with pytest.raises(BadInput, match="several accounts have this name"):
        files.load_mapping(path, TWINS)
    path.write_text(json.dumps({"accounts": {"4": "Liabilities:House"}, "categories": {}}))
    names = files.load_mapping(path, TWINS)
    assert names.names[4] == "Liabilities:House"


# --- exact money in every currency (no database: the writers take a Selection) --------------


def _selection(currency: str, amounts: list[int], balance: int) -> Selection:
    moment = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)
    account = OutputAccount(
        id=1,
        stable_id="sophsync-account-1",
        name="Wallet",
        type=AccountType.DEPOSITORY,
        subtype="checking",
        currency=currency,
        balance_minor=balance,
        available_minor=balance,
        balance_at=moment,
        institution="Test Bank",
        mask="0001",
    )
    txns = tuple(
        OutputTransaction(
            id=index + 1,
            stable_id=f"sophsync-{index + 1}",
            account_id=1,
            provider_id=f"p-{index}",
            date=dt.date(2026, 11, 1) + dt.timedelta(days=index % 20),
            posted_date=None,
            pending=False,
            amount_minor=amount,
            currency=currency,
            description=f'Shop "{index}"; A|B/C',
            merchant=None,
            category="Food",
            memo=None,
            check_number=None,
        )
        for index, amount in enumerate(amounts)
    )
    ordered = tuple(sorted(txns, key=lambda t: (t.date, t.id)))
    return Selection((account,), ordered, None, None)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    currency=st.sampled_from(["JPY", "USD", "KWD"]),
    amounts=st.lists(
        st.integers(min_value=-(10**12), max_value=10**12).filter(bool), min_size=1, max_size=6
    ),
    balance=st.integers(min_value=-(10**13), max_value=10**13),
)
def test_amounts_are_exact_in_every_format(currency: str, amounts: list[int], balance: int) -> None:
    selection = _selection(currency, amounts, balance)
    export = files.Export(
        selection, files.account_names(selection.accounts), files.openings(selection, {})
    )
    places = exponent(currency)
    wanted = sorted(to_decimal(amount, currency) for amount in amounts)
    total = to_decimal(sum(amounts), currency)

    rows = list(csv.DictReader(io.StringIO(render(export, "csv"))))
    assert sorted(Decimal(row["amount"]) for row in rows) == wanted
    assert all(len(row["amount"].partition(".")[2]) == places for row in rows)

    tree = OFXTree()
    tree.parse(io.BytesIO(render(export, "ofx").encode()))
    (statement,) = tree.convert().statements
    assert sorted(t.trnamt for t in statement.banktranlist) == wanted
    assert statement.ledgerbal.balamt == to_decimal(balance, currency)

    entries, errors, _ = loader.load_string(render(export, "beancount"))
    assert errors == []
    got = [
        posting.units.number
        for entry in entries
        if isinstance(entry, bc.Transaction) and "sophsync_id" in entry.meta
        for posting in entry.postings
        if posting.account == export.names.names[1] and posting.units is not None
    ]
    assert sorted(got) == wanted

    with tempfile.TemporaryDirectory() as folder:
        qif = Path(folder) / "money.qif"
        qif.write_text(render(export, "qif"), encoding="utf-8")
        parsed = quiffen.Qif.parse(qif, day_first=False)
        journal = Path(folder) / "money.journal"
        journal.write_text(render(export, "ledger"), encoding="utf-8")
        balances = hledger_balances(journal)
    (account,) = parsed.accounts.values()
    got = [txn.amount for txns in account.transactions.values() for txn in txns]
    assert sorted(got) == wanted
    # quiffen reads a zero balance as no balance.
    assert account.balance == to_decimal(balance, currency) or (
        balance == 0 and account.balance is None
    )
    assert balances[export.names.names[1]] == to_decimal(balance, currency)
    assert balances["Equity:Opening-Balances"] == total - to_decimal(balance, currency)


# --- the command ----------------------------------------------------------------------------


#: The command is a thin shell over what the tests above check on both databases.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@SQLITE_ONLY
def test_command_writes_files_and_stdout(
    household: Household, engine_sandbox: SandboxServer, tmp_path: Path
) -> None:
    core = household.core
    store = truth(household)
    first, second = tmp_path / "one.beancount", tmp_path / "two.beancount"
    out = ok(cli(core, engine_sandbox, "export", "--format", "beancount", "--output", str(first)))
    count = sum(map(len, store.transactions.values()))
    assert out == f"Wrote {count} transactions of 12 accounts to {first} (beancount).\n"
    ok(cli(core, engine_sandbox, "export", "--format", "beancount", "-o", str(second)))
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))
    stdout = ok(cli(core, engine_sandbox, "export", "--format", "beancount"))
    assert stdout.encode() == first.read_bytes()
    _, errors, _ = loader.load_file(str(first))
    assert errors == []
    # Only the card, in a window, without pending: the CSV says exactly which rows.
    start, end = dt.date(2026, 9, 1), dt.date(2026, 11, 30)
    args = ["export", "--format", "csv", "--account", "3", "--from", str(start), "--to", str(end)]
    rows = list(csv.DictReader(io.StringIO(ok(cli(core, engine_sandbox, *args, "--no-pending")))))
    wanted = [t for t in store.posted(3) if start <= t.date <= end]
    assert len(wanted) < len(store.transactions[3])
    assert [row["sophsync_id"] for row in rows] == [f"sophsync-{t.id}" for t in wanted]
    # A mapping file renames accounts; hledger reads what the command wrote.
    mapping = tmp_path / "accounts.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    journal = tmp_path / "household.journal"
    ok(
        cli(
            core,
            engine_sandbox,
            "export",
            "--format",
            "ledger",
            "--accounts-map",
            str(mapping),
            "-o",
            str(journal),
        )
    )
    balances = hledger_balances(journal)
    assert balances["Assets:Family:Checking"] == store.balance(1) + store.pending_total(1)


def test_same_bytes_twice_and_pending_flags(household: Household) -> None:
    """Two exports of the same data are byte-identical: nothing in them comes from the clock.
    Pending transactions are flagged, or left out with ``pending=False``."""
    for fmt in files.FORMATS:
        once = render(files.prepare(household.core, household.admin), fmt)
        twice = render(files.prepare(household.core, household.admin), fmt)
        assert once == twice, fmt
    store = truth(household)
    pending = {
        f"sophsync-{t.id}" for txns in store.transactions.values() for t in txns if t.pending
    }
    assert pending, "the household has pending transactions"
    export = files.prepare(household.core, household.admin)
    beancount = render(export, "beancount")
    flagged = set(re.findall(r'^\d{4}-\d\d-\d\d ! .*\n  sophsync_id: "([^"]+)"', beancount, re.M))
    assert flagged == pending
    without = files.prepare(household.core, household.admin, pending=False)
    assert not any(t.pending for t in without.selection.transactions)
    assert pending.isdisjoint(t.stable_id for t in without.selection.transactions)


@SQLITE_ONLY
def test_command_bad_input(
    household: Household, engine_sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Each mistake is one line and exit code 2, and the previous file stays as it was. A few
    run as a real process; the rest through click in this process (the same command)."""
    core = household.core
    target = tmp_path / "kept.csv"
    target.write_text("previous export\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("[accounts]\n1 = 'assets:lower'\n")

    def fails(*args: str, expected: str) -> None:
        one_line_error(cli(core, engine_sandbox, "export", *args), 2, expected)

    fails("--format", "xlsx", expected="--format must be one of csv, ofx, qif, beancount, ledger")
    fails("--format", "csv", "--account", "77", "-o", str(target), expected="no account has id 77")
    fails(
        "--format",
        "beancount",
        "--accounts-map",
        str(bad),
        "-o",
        str(target),
        expected="accounts.1",
    )
    assert target.read_text() == "previous export\n"

    env = {
        "SOPHSYNC_DATABASE_URL": core.settings.url,
        "SOPHSYNC_DATA_DIR": str(core.settings.data_dir),
    }
    runner = CliRunner()
    cases = [
        (["--format", "csv", "--from", "21/11/2026"], "--from must be a date"),
        (["--format", "csv", "--to", "tomorrow"], "--to must be a date"),
        (["--format", "csv", "--from", "2026-02-01", "--to", "2026-01-01"], "--from must not"),
        (["--format", "csv", "--account", "checking"], "--account must be an account id"),
        (["--format", "csv", "--output", str(tmp_path)], "is a folder"),
        (["--format", "csv", "-o", str(tmp_path / "no" / "x.csv")], "does not exist"),
        (["--format", "csv", "--accounts-map", str(tmp_path / "none.toml")], "no file"),
    ]
    for args, expected in cases:
        result = runner.invoke(main_cli, ["export", *args], env=env)
        assert isinstance(result.exception, BadInput), (args, result.output)
        assert result.exception.exit_code == 2
        assert expected in str(result.exception)
    help_text = runner.invoke(main_cli, ["export", "--help"], env=env).output
    for option in ("--format", "--account", "--from", "--to", "--output", "--accounts-map"):
        assert option in help_text
