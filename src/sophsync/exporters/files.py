"""File exports: CSV, OFX 2.2, QIF, beancount and ledger / hledger journals.

Every writer reads one :class:`~sophsync.exporters.source.Selection` (the local store, never
Sophtron) and writes text to a stream, row by row, so that a file of a hundred thousand
transactions never sits in memory as one string. The writers are our own code on the standard
library: the files must open in GnuCash, Quicken, beancount, ledger and hledger, and the tests
read every one of them back with an independent parser.

Three promises hold for every format:

* Money is exact: amounts come from integer minor units and are printed with the currency's
  own number of decimals (0 for JPY, 3 for KWD), never through a float.
* Each transaction carries its stable id (``sophsync-42``) and the bank's id downstream (OFX
  FITID, beancount metadata, ledger tags, CSV columns, the QIF memo), so a tool that imports
  the file twice sees the same transaction twice and keeps one.
* The same data gives the same bytes: nothing depends on the clock. Dates in the file come
  from the data (OFX ``DTSERVER`` is the newest balance time).

Account names follow a mapping file the household can write (see :func:`load_mapping`);
without one, names are derived from the account's type, bank and name
(``Assets:SophtronBank:PrimaryChecking``), deterministic and unique.
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import json
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from xml.sax.saxutils import escape

from ..core.app import Core
from ..core.families import Actor
from ..core.importer import exponent
from ..errors import BadInput
from ..store.models import AccountType
from .atomic import replacing
from .source import OutputAccount, OutputTransaction, Selection, select_outputs

FORMATS = ("csv", "ofx", "qif", "beancount", "ledger")

#: The CSV header, in order. Documented in docs/outputs.md; scripts rely on it.
CSV_COLUMNS = (
    "date",
    "posted_date",
    "account_id",
    "account",
    "account_name",
    "institution",
    "amount",
    "currency",
    "payee",
    "description",
    "category",
    "memo",
    "check_number",
    "pending",
    "sophsync_id",
    "sophtron_id",
)

MONEY_OUT = "Expenses:Uncategorized"
MONEY_IN = "Income:Uncategorized"
OPENING_BALANCES = "Equity:Opening-Balances"
#: OFX BANKID when the mapping gives none: we do not know the routing number.
DEFAULT_BANKID = "SOPHSYNC"

_ROOTS = ("Assets", "Liabilities", "Equity", "Income", "Expenses")


# --- money and text -------------------------------------------------------------------------


def money(minor: int, currency: str) -> str:
    """``-1234.56`` from -123456 USD: exact, the currency's own decimals, no grouping."""
    places = exponent(currency)
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor))
    if places == 0:
        return sign + digits
    digits = digits.rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


# --- account names --------------------------------------------------------------------------


def legal_account_name(name: str) -> bool:
    """Whether beancount accepts ``name`` (and so do ledger and hledger): a root among Assets,
    Liabilities, Equity, Income and Expenses, then components that start with a capital letter
    or a digit and hold only letters, digits and dashes."""
    parts = name.split(":")
    if len(parts) < 2 or parts[0] not in _ROOTS:
        return False
    for part in parts[1:]:
        if not part or not (part[0].isupper() or part[0].isdigit()):
            return False
        if not all(char.isalnum() or char == "-" for char in part):
            return False
    return True


def _component(text: str) -> str:
    """``Sophtron Bank NoMFA`` -> ``SophtronBankNoMFA``: ASCII words, each capitalised."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_text)
    return "".join(word[0].upper() + word[1:] for word in words)


def default_account_name(account: OutputAccount) -> str:
    root = "Liabilities" if account.is_liability else "Assets"
    name = _component(account.name) or f"Account{account.id}"
    bank = _component(account.institution or "")
    return f"{root}:{bank}:{name}" if bank else f"{root}:{name}"


@dataclass(frozen=True)
class AccountNames:
    """How one export names accounts: the household's mapping applied over the defaults."""

    names: dict[int, str]
    ofx_acctid: dict[int, str] = field(default_factory=dict)
    ofx_bankid: dict[int, str] = field(default_factory=dict)
    #: Sophtron category (lower case) -> counter account.
    categories: dict[str, str] = field(default_factory=dict)
    money_out: str = MONEY_OUT
    money_in: str = MONEY_IN
    opening: str = OPENING_BALANCES

    def counter(self, txn: OutputTransaction) -> str:
        """The other side of a transaction in beancount and ledger: the mapped category, else
        the uncategorised expense (money out) or income (money in) account."""
        if txn.category:
            mapped = self.categories.get(txn.category.strip().lower())
            if mapped is not None:
                return mapped
        return self.money_out if txn.amount_minor < 0 else self.money_in


def account_names(
    accounts: Sequence[OutputAccount],
    mapped: dict[int, str] | None = None,
    **extra: Any,
) -> AccountNames:
    """Names for every account of the household: the mapped ones first, then the defaults in
    account id order; a default that is already taken gets ``-ID`` appended, so that the older
    account keeps the plain name when a newer one shares it."""
    mapped = dict(mapped or {})
    taken = set(mapped.values())
    names = dict(mapped)
    for account in sorted(accounts, key=lambda item: item.id):
        if account.id in names:
            continue
        name = default_account_name(account)
        if name in taken:
            name = f"{name}-{account.id}"
        taken.add(name)
        names[account.id] = name
    return AccountNames(names=names, **extra)


_TOP_KEYS = {"accounts", "categories", "defaults"}
_ACCOUNT_KEYS = {"name", "ofx_acctid", "ofx_bankid"}
_DEFAULT_KEYS = {"money_out", "money_in", "opening_balances"}


def load_mapping(path: Path, accounts: Sequence[OutputAccount]) -> AccountNames:
    """Read the household's account-name mapping (TOML, or JSON when the file ends in .json).

    ``[accounts]`` maps a local account (its id, its stable id ``sophsync-account-ID`` or its
    exact name) to a name, or to a table with ``name``, ``ofx_acctid`` and ``ofx_bankid``;
    ``[categories]`` maps a Sophtron category to the counter account of beancount and ledger;
    ``[defaults]`` sets ``money_out``, ``money_in`` and ``opening_balances``. Any mistake is
    one error naming the file and the key."""

    def bad(key: str, message: str) -> BadInput:
        where = f"{path}: {key}: " if key else f"{path}: "
        return BadInput(where + message, field="accounts-map")

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"--accounts-map: no file at {path}", field="accounts-map") from None
    except (OSError, UnicodeDecodeError) as error:
        message = f"--accounts-map: cannot read {path} ({error})"
        raise BadInput(message, field="accounts-map") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise bad(
            "", f"not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {error}"
        ) from None
    if not isinstance(data, dict):
        raise bad("", "expected a table with [accounts], [categories] or [defaults]")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise bad(unknown[0], "unknown section; use accounts, categories or defaults")

    def table(key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise bad(key, "must be a table")
        return value

    def account_name(key: str, value: Any) -> str:
        if not isinstance(value, str) or not legal_account_name(value):
            raise bad(
                key,
                f"{value!r} is not a valid account name: it must start with Assets, "
                "Liabilities, Equity, Income or Expenses, then parts like :Bank:Checking that "
                "start with a capital letter or digit and hold only letters, digits and dashes",
            )
        return value

    by_id = {account.id: account for account in accounts}
    by_name: dict[str, list[int]] = {}
    for account in accounts:
        by_name.setdefault(account.name, []).append(account.id)

    def account_id(key: str) -> int:
        digits = key.removeprefix("sophsync-account-")
        if digits.isdigit():
            if int(digits) not in by_id:
                raise bad(
                    f"accounts.{key}", "no account has this id; `sophsync accounts list` shows them"
                )
            return int(digits)
        found = by_name.get(key, [])
        if not found:
            raise bad(f"accounts.{key}", "no account has this id or name")
        if len(found) > 1:
            ids = ", ".join(str(item) for item in found)
            raise bad(f"accounts.{key}", f"several accounts have this name (ids {ids}): use the id")
        return found[0]

    mapped: dict[int, str] = {}
    acctids: dict[int, str] = {}
    bankids: dict[int, str] = {}
    for key, value in table("accounts").items():
        where = f"accounts.{key}"
        local = account_id(key)
        if local in mapped or local in acctids or local in bankids:
            raise bad(where, f"account {local} is mapped twice")
        if isinstance(value, dict):
            unknown = sorted(set(value) - _ACCOUNT_KEYS)
            if unknown:
                raise bad(f"{where}.{unknown[0]}", "unknown key; use name, ofx_acctid, ofx_bankid")
            if "name" in value:
                mapped[local] = account_name(f"{where}.name", value["name"])
            for ofx_key, limit, target in (
                ("ofx_acctid", 22, acctids),
                ("ofx_bankid", 9, bankids),
            ):
                if ofx_key in value:
                    given = value[ofx_key]
                    if not isinstance(given, str) or not given.strip() or len(given) > limit:
                        raise bad(f"{where}.{ofx_key}", f"must be text of 1 to {limit} characters")
                    target[local] = given.strip()
        else:
            mapped[local] = account_name(where, value)
    seen: dict[str, int] = {}
    for local, name in sorted(mapped.items()):
        if name in seen:
            raise bad(f"accounts.{local}", f"{name} is already the name of account {seen[name]}")
        seen[name] = local

    categories: dict[str, str] = {}
    for key, value in table("categories").items():
        categories[key.strip().lower()] = account_name(f"categories.{key}", value)
    defaults = table("defaults")
    unknown = sorted(set(defaults) - _DEFAULT_KEYS)
    if unknown:
        raise bad(
            f"defaults.{unknown[0]}", "unknown key; use money_out, money_in, opening_balances"
        )
    chosen = {key: account_name(f"defaults.{key}", value) for key, value in defaults.items()}
    names = account_names(
        accounts,
        mapped,
        ofx_acctid=acctids,
        ofx_bankid=bankids,
        categories=categories,
        money_out=chosen.get("money_out", MONEY_OUT),
        money_in=chosen.get("money_in", MONEY_IN),
        opening=chosen.get("opening_balances", OPENING_BALANCES),
    )
    counters = {names.money_out, names.money_in, names.opening, *categories.values()}
    for local, name in sorted(names.names.items()):
        if name in counters:
            raise bad(f"accounts.{local}", f"{name} is also used as a counter account")
    return names


# --- balances for the journals --------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """What the journals need to make an account's running balance the bank's.

    The store holds history from the account's sync start only, so the bank's balance is
    rarely the sum of the stored transactions. ``amount_minor`` is the balance before the first
    exported transaction: the bank's ledger balance minus the posted transactions up to the
    balance date (pending ones are not in the bank's balance yet). ``assertion_minor`` is what
    the account holds at the end of the balance date in the journal: the bank's balance plus
    the pending transactions exported; ``None`` when the export ends before the balance date
    (the assertion could not hold) or no balance is known."""

    date: dt.date
    amount_minor: int | None
    balance_date: dt.date | None
    assertion_minor: int | None


@dataclass(frozen=True)
class Export:
    """One export: the selection, the names, and the opening balances of the journals."""

    selection: Selection
    names: AccountNames
    openings: dict[int, Opening]

    def by_account(self) -> dict[int, list[OutputTransaction]]:
        grouped: dict[int, list[OutputTransaction]] = {account.id: [] for account in self.accounts}
        for txn in self.selection.transactions:
            grouped[txn.account_id].append(txn)
        return grouped

    @property
    def accounts(self) -> tuple[OutputAccount, ...]:
        return self.selection.accounts


def _balance_date(account: OutputAccount) -> dt.date | None:
    return account.balance_at.date() if account.balance_at is not None else None


def openings(
    selection: Selection, later_posted: dict[int, list[OutputTransaction]]
) -> dict[int, Opening]:
    """The :class:`Opening` of every selected account. ``later_posted`` holds, per account,
    the posted transactions after the export's end date (they are in the bank's balance)."""
    grouped: dict[int, list[OutputTransaction]] = {account.id: [] for account in selection.accounts}
    for txn in selection.transactions:
        grouped[txn.account_id].append(txn)
    dates = [txn.date for txn in selection.transactions]
    fallback = selection.start or (min(dates) if dates else None)
    result: dict[int, Opening] = {}
    for account in selection.accounts:
        txns = grouped[account.id]
        balance_date = _balance_date(account)
        start = selection.start or (txns[0].date if txns else None) or balance_date or fallback
        start = start or dt.date(1970, 1, 1)
        if balance_date is None:
            result[account.id] = Opening(start, None, None, None)
            continue
        later = later_posted.get(account.id, [])
        posted = sum(
            txn.amount_minor
            for txn in (*txns, *later)
            if not txn.pending and txn.date <= balance_date
        )
        pending = sum(txn.amount_minor for txn in txns if txn.pending and txn.date <= balance_date)
        covered = selection.end is None or selection.end >= balance_date
        asserted = covered and start <= balance_date
        result[account.id] = Opening(
            start,
            account.balance_minor - posted,
            balance_date if asserted else None,
            account.balance_minor + pending if asserted else None,
        )
    return result


# --- CSV ------------------------------------------------------------------------------------


def write_csv(export: Export, out: TextIO) -> None:
    """One row per transaction, oldest first within each account, with :data:`CSV_COLUMNS`."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    accounts = {account.id: account for account in export.accounts}
    names = export.names.names
    for txn in export.selection.transactions:
        account = accounts[txn.account_id]
        writer.writerow(
            (
                txn.date.isoformat(),
                txn.posted_date.isoformat() if txn.posted_date else "",
                txn.account_id,
                names[txn.account_id],
                account.name,
                account.institution or "",
                money(txn.amount_minor, txn.currency),
                txn.currency,
                txn.payee,
                txn.description,
                txn.category or "",
                txn.memo or "",
                txn.check_number or "",
                "true" if txn.pending else "false",
                txn.stable_id,
                txn.provider_id or "",
            )
        )


# --- OFX 2.2 --------------------------------------------------------------------------------

_OFX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    '<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>\n'
)
_STATUS = "<STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>"


def ofx_account_type(account: OutputAccount) -> str:
    """ACCTTYPE of a bank statement. Investment accounts export their cash movements as a
    money-market statement (the store holds no holdings), loans as a credit line."""
    subtype = (account.subtype or "").lower()
    if account.type is AccountType.LOAN or "line of credit" in subtype:
        return "CREDITLINE"
    if account.type is AccountType.INVESTMENT or "money market" in subtype:
        return "MONEYMRKT"
    if "saving" in subtype:
        return "SAVINGS"
    if subtype == "cd":
        return "CD"
    return "CHECKING"


def _ofx_date(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _ofx_time(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.UTC) if moment.tzinfo else moment
    return utc.strftime("%Y%m%d%H%M%S") + ".000[+0:UTC]"


def _text(value: str, limit: int) -> str:
    return escape(_one_line(value)[:limit])


def _ofx_transaction(txn: OutputTransaction) -> str:
    kind = "CHECK" if txn.check_number else "DEBIT" if txn.amount_minor < 0 else "CREDIT"
    parts = [
        f"<STMTTRN><TRNTYPE>{kind}</TRNTYPE>",
        f"<DTPOSTED>{_ofx_date(txn.posted_date or txn.date)}</DTPOSTED>",
        f"<DTUSER>{_ofx_date(txn.date)}</DTUSER>",
        f"<TRNAMT>{money(txn.amount_minor, txn.currency)}</TRNAMT>",
        f"<FITID>{escape(txn.stable_id)}</FITID>",
    ]
    if txn.check_number:
        parts.append(f"<CHECKNUM>{_text(txn.check_number, 12)}</CHECKNUM>")
    parts.append(f"<NAME>{_text(txn.payee or 'Unknown', 32)}</NAME>")
    memo = _memo_text(txn)
    if memo:
        parts.append(f"<MEMO>{_text(memo, 255)}</MEMO>")
    parts.append("</STMTTRN>\n")
    return "".join(parts)


def _memo_text(txn: OutputTransaction) -> str:
    """The description when the payee is the merchant, then the bank's memo."""
    parts = []
    if _one_line(txn.description) and _one_line(txn.description) != _one_line(txn.payee):
        parts.append(_one_line(txn.description))
    if _one_line(txn.memo):
        parts.append(_one_line(txn.memo))
    return "; ".join(parts)


def write_ofx(export: Export, out: TextIO) -> None:
    """An OFX 2.2 file: a bank statement per depository, investment, loan or other account,
    a credit-card statement per card. Pending transactions are left out (OFX statements list
    posted ones; the next export carries them, with the same FITID, once they post)."""
    grouped = export.by_account()
    times = [a.balance_at for a in export.accounts if a.balance_at is not None]
    dates = [txn.date for txn in export.selection.transactions]
    if times:
        server = _ofx_time(max(times))
    elif dates:
        server = _ofx_date(max(dates))
    else:
        server = "19700101"
    out.write(_OFX_HEAD)
    out.write("<OFX>\n<SIGNONMSGSRSV1><SONRS>")
    out.write(f"{_STATUS}<DTSERVER>{server}</DTSERVER><LANGUAGE>ENG</LANGUAGE>")
    out.write("</SONRS></SIGNONMSGSRSV1>\n")
    banks = [a for a in export.accounts if a.type is not AccountType.CREDIT_CARD]
    cards = [a for a in export.accounts if a.type is AccountType.CREDIT_CARD]
    for tag, accounts, card in (
        ("BANKMSGSRSV1", banks, False),
        ("CREDITCARDMSGSRSV1", cards, True),
    ):
        if not accounts:
            continue
        out.write(f"<{tag}>\n")
        for account in accounts:
            _ofx_statement(export, account, grouped[account.id], card, out)
        out.write(f"</{tag}>\n")
    out.write("</OFX>\n")


def _ofx_statement(
    export: Export, account: OutputAccount, txns: list[OutputTransaction], card: bool, out: TextIO
) -> None:
    names = export.names
    acctid = escape(names.ofx_acctid.get(account.id, account.stable_id))
    posted = [txn for txn in txns if not txn.pending]
    start = export.selection.start or (posted[0].date if posted else None)
    balance_date = _balance_date(account)
    end_dates = [d for d in (export.selection.end, balance_date) if d is not None]
    end = min(end_dates) if end_dates else (max(t.date for t in posted) if posted else None)
    if end is not None and posted:
        end = max(end, max(t.posted_date or t.date for t in posted))
    start = start or end or dt.date(1970, 1, 1)
    end = end or start
    wrapper, statement = ("CCSTMTTRNRS", "CCSTMTRS") if card else ("STMTTRNRS", "STMTRS")
    out.write(f"<{wrapper}><TRNUID>{escape(account.stable_id)}</TRNUID>{_STATUS}\n")
    out.write(f"<{statement}><CURDEF>{escape(account.currency)}</CURDEF>")
    if card:
        out.write(f"<CCACCTFROM><ACCTID>{acctid}</ACCTID></CCACCTFROM>\n")
    else:
        bankid = escape(names.ofx_bankid.get(account.id, DEFAULT_BANKID))
        out.write(
            f"<BANKACCTFROM><BANKID>{bankid}</BANKID><ACCTID>{acctid}</ACCTID>"
            f"<ACCTTYPE>{ofx_account_type(account)}</ACCTTYPE></BANKACCTFROM>\n"
        )
    out.write(f"<BANKTRANLIST><DTSTART>{_ofx_date(start)}</DTSTART>")
    out.write(f"<DTEND>{_ofx_date(end)}</DTEND>\n")
    out.writelines(_ofx_transaction(txn) for txn in posted)
    out.write("</BANKTRANLIST>\n")
    asof = _ofx_time(account.balance_at) if account.balance_at else _ofx_date(end)
    balance = money(account.balance_minor, account.currency)
    out.write(f"<LEDGERBAL><BALAMT>{balance}</BALAMT><DTASOF>{asof}</DTASOF></LEDGERBAL>\n")
    if account.available_minor is not None:
        available = money(account.available_minor, account.currency)
        out.write(f"<AVAILBAL><BALAMT>{available}</BALAMT><DTASOF>{asof}</DTASOF></AVAILBAL>\n")
    out.write(f"</{statement}></{wrapper}>\n")


# --- QIF ------------------------------------------------------------------------------------


def qif_account_type(account: OutputAccount) -> str:
    if account.type is AccountType.DEPOSITORY:
        return "Bank"
    if account.type is AccountType.CREDIT_CARD:
        return "CCard"
    return "Oth L" if account.is_liability else "Oth A"


def _qif_text(text: str | None) -> str:
    return _one_line(text)


def _qif_category(text: str) -> str:
    # In a category, "/" separates the class and ":" a subcategory: Sophtron means neither.
    return _one_line(text).replace("/", "-").replace(":", "-")


def write_qif(export: Export, out: TextIO) -> None:
    """A multi-account QIF file: an ``!Account`` block (name, type, balance and its date) then
    the account's transactions. Dates are ISO (YYYY-MM-DD); the memo ends with `` | `` and the
    stable id, since QIF has no field for it."""
    grouped = export.by_account()
    out.write("!Option:AutoSwitch\n")
    for account in export.accounts:
        kind = qif_account_type(account)
        out.write(f"!Account\nN{export.names.names[account.id]}\nT{kind}\n")
        out.write(f"D{_qif_text(account.name)}\n")
        if account.balance_at is not None:
            out.write(f"/{account.balance_at.date().isoformat()}\n")
            out.write(f"${money(account.balance_minor, account.currency)}\n")
        out.write("^\n")
    out.write("!Clear:AutoSwitch\n")
    for account in export.accounts:
        kind = qif_account_type(account)
        out.write(f"!Account\nN{export.names.names[account.id]}\nT{kind}\n^\n")
        out.write(f"!Type:{kind}\n")
        for txn in grouped[account.id]:
            lines = [f"D{txn.date.isoformat()}", f"T{money(txn.amount_minor, txn.currency)}"]
            if not txn.pending:
                lines.append("C*")
            if txn.check_number:
                lines.append(f"N{_qif_text(txn.check_number)}")
            lines.append(f"P{_qif_text(txn.payee)}")
            memo = _memo_text(txn)
            lines.append(f"M{_qif_text(memo)} | {txn.stable_id}" if memo else f"M{txn.stable_id}")
            if txn.category:
                lines.append(f"L{_qif_category(txn.category)}")
            lines.append("^\n")
            out.write("\n".join(lines))


# --- beancount ------------------------------------------------------------------------------


def _quoted(text: str | None) -> str:
    return '"' + _one_line(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _merged(export: Export) -> Iterator[OutputTransaction]:
    """Every transaction in date order across accounts (each account's list is in date order)."""
    grouped = export.by_account()
    return heapq.merge(
        *(grouped[account.id] for account in export.accounts),
        key=lambda txn: (txn.date, txn.account_id, txn.id),
    )


def _counter_accounts(export: Export) -> list[str]:
    names = export.names
    used = {names.money_out, names.money_in}
    if any(opening.amount_minor is not None for opening in export.openings.values()):
        used.add(names.opening)
    used.update(names.counter(txn) for txn in export.selection.transactions if txn.category)
    return sorted(used)


def _first_date(export: Export) -> dt.date:
    return min((opening.date for opening in export.openings.values()), default=dt.date(1970, 1, 1))


def _heading(export: Export, comment: str) -> str:
    count = len(export.selection.transactions)
    start, end = export.selection.start, export.selection.end
    window = (f", from {start}" if start else "") + (f", to {end}" if end else "")
    return (
        f"{comment} sophsync export: {len(export.accounts)} accounts, {count} transactions"
        f"{window}.\n"
    )


def write_beancount(export: Export, out: TextIO) -> None:
    """A beancount ledger: options, ``open`` directives, an opening balance per account, the
    transactions (flag ``!`` while pending) with the stable and bank ids as metadata, and a
    ``balance`` assertion per account dated the day after its balance date."""
    names = export.names
    currencies = sorted({account.currency for account in export.accounts})
    out.write(_heading(export, ";"))
    for currency in currencies:
        out.write(f'option "operating_currency" "{currency}"\n')
    out.write("\n")
    first = _first_date(export)
    for counter in _counter_accounts(export):
        out.write(f"{first.isoformat()} open {counter}\n")
    for account in export.accounts:
        opening = export.openings[account.id]
        out.write(f"{opening.date.isoformat()} open {names.names[account.id]}\n")
        out.write(f"  sophsync_account: {_quoted(account.stable_id)}\n")
        out.write(f"  account_name: {_quoted(account.name)}\n")
        if account.institution:
            out.write(f"  institution: {_quoted(account.institution)}\n")
    out.write("\n")
    for account in export.accounts:
        opening = export.openings[account.id]
        if opening.amount_minor is None:
            continue
        amount = money(opening.amount_minor, account.currency)
        negated = money(-opening.amount_minor, account.currency)
        out.write(f'{opening.date.isoformat()} * "Opening balance"\n')
        out.write(f"  sophsync_account: {_quoted(account.stable_id)}\n")
        out.write(f"  {names.names[account.id]}  {amount} {account.currency}\n")
        out.write(f"  {names.opening}  {negated} {account.currency}\n\n")
    for txn in _merged(export):
        flag = "!" if txn.pending else "*"
        amount = money(txn.amount_minor, txn.currency)
        negated = money(-txn.amount_minor, txn.currency)
        lines = [
            f"{txn.date.isoformat()} {flag} {_quoted(txn.payee)} {_quoted(txn.description)}",
            f"  sophsync_id: {_quoted(txn.stable_id)}",
        ]
        if txn.provider_id:
            lines.append(f"  sophtron_id: {_quoted(txn.provider_id)}")
        if txn.category:
            lines.append(f"  category: {_quoted(txn.category)}")
        if txn.check_number:
            lines.append(f"  check: {_quoted(txn.check_number)}")
        if _one_line(txn.memo):
            lines.append(f"  memo: {_quoted(txn.memo)}")
        lines.append(f"  {names.names[txn.account_id]}  {amount} {txn.currency}")
        lines.append(f"  {names.counter(txn)}  {negated} {txn.currency}\n\n")
        out.write("\n".join(lines))
    for account in export.accounts:
        opening = export.openings[account.id]
        if opening.balance_date is None or opening.assertion_minor is None:
            continue
        day = (opening.balance_date + dt.timedelta(days=1)).isoformat()
        amount = money(opening.assertion_minor, account.currency)
        out.write(f"{day} balance {names.names[account.id]}  {amount} {account.currency}\n")


# --- ledger / hledger -----------------------------------------------------------------------


def _ledger_text(text: str | None) -> str:
    # A semicolon starts a comment and "|" splits payee from note in hledger.
    return _one_line(text).replace(";", ",").replace("|", "/")


def write_ledger(export: Export, out: TextIO) -> None:
    """A journal that ledger 3 and hledger both read: ``account`` declarations, an opening
    balance per account, the transactions in date order (``*`` cleared, ``!`` pending) tagged
    ``sophsync-id`` and ``sophtron-id``, and a balance assertion (``= AMOUNT``) on each
    account's last posting up to its balance date."""
    names = export.names
    out.write(_heading(export, ";"))
    out.write("\n")
    for counter in _counter_accounts(export):
        out.write(f"account {counter}\n")
    for account in export.accounts:
        out.write(f"account {names.names[account.id]}\n")
    out.write("\n")
    # Where each account's assertion goes: its last posting dated on or before the balance date.
    last: dict[int, int] = {}
    for txn in export.selection.transactions:
        opening = export.openings[txn.account_id]
        if opening.balance_date is not None and txn.date <= opening.balance_date:
            last[txn.account_id] = txn.id

    def assertion(account_id: int) -> str:
        opening = export.openings[account_id]
        if opening.assertion_minor is None:
            return ""
        currency = export.selection.account(account_id).currency
        return f" = {money(opening.assertion_minor, currency)} {currency}"

    openings_text: list[tuple[dt.date, int, int, str | OutputTransaction]] = []
    for account in export.accounts:
        opening = export.openings[account.id]
        if opening.amount_minor is None:
            continue
        amount = money(opening.amount_minor, account.currency)
        negated = money(-opening.amount_minor, account.currency)
        check = assertion(account.id) if account.id not in last else ""
        text = (
            f"{opening.date.isoformat()} * Opening balance\n"
            f"    ; sophsync-account: {account.stable_id}\n"
            f"    {names.names[account.id]}  {amount} {account.currency}{check}\n"
            f"    {names.opening}  {negated} {account.currency}\n\n"
        )
        openings_text.append((opening.date, -1, account.id, text))
    openings_text.sort(key=lambda entry: entry[:3])
    transactions = ((txn.date, txn.account_id, txn.id, txn) for txn in _merged(export))

    for *_, item in heapq.merge(openings_text, transactions, key=lambda entry: entry[:3]):
        if isinstance(item, str):
            out.write(item)
            continue
        txn = item
        flag = "!" if txn.pending else "*"
        payee = _ledger_text(txn.payee) or "Unknown"
        description = _ledger_text(txn.description)
        code = f" ({_ledger_text(txn.check_number)})" if txn.check_number else ""
        amount = money(txn.amount_minor, txn.currency)
        negated = money(-txn.amount_minor, txn.currency)
        check = assertion(txn.account_id) if last.get(txn.account_id) == txn.id else ""
        lines = [
            f"{txn.date.isoformat()} {flag}{code} {payee}",
            f"    ; {description}" if description and description != payee else "",
            f"    ; sophsync-id: {txn.stable_id}",
            f"    ; sophtron-id: {txn.provider_id}" if txn.provider_id else "",
            f"    ; category: {_ledger_text(txn.category)}" if txn.category else "",
            f"    ; memo: {_ledger_text(txn.memo)}" if _one_line(txn.memo) else "",
            f"    {names.names[txn.account_id]}  {amount} {txn.currency}{check}",
            f"    {names.counter(txn)}  {negated} {txn.currency}\n\n",
        ]
        out.write("\n".join(line for line in lines if line))


WRITERS: dict[str, Callable[[Export, TextIO], None]] = {
    "csv": write_csv,
    "ofx": write_ofx,
    "qif": write_qif,
    "beancount": write_beancount,
    "ledger": write_ledger,
}


# --- the export -----------------------------------------------------------------------------


def parse_format(value: str) -> str:
    wanted = value.strip().lower()
    if wanted == "hledger":
        wanted = "ledger"
    if wanted not in WRITERS:
        choices = ", ".join(FORMATS)
        raise BadInput(f"--format must be one of {choices}, not {value!r}", field="format")
    return wanted


def prepare(
    core: Core,
    actor: Actor,
    *,
    account_ids: Sequence[int] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    pending: bool = True,
    mapping: Path | None = None,
) -> Export:
    """Read what an export writes: the selection, the names (over all the household's
    accounts, so that an account is named the same in a full export and in one of its own),
    and the journals' opening balances."""
    selection = select_outputs(
        core, actor, account_ids=account_ids, start=start, end=end, pending=pending
    )
    # Accounts only: a window no transaction falls in.
    household = select_outputs(core, actor, start=dt.date.max, end=dt.date.max).accounts
    names = load_mapping(mapping, household) if mapping else account_names(household)
    later: dict[int, list[OutputTransaction]] = {}
    if end is not None and any(
        (day := _balance_date(account)) is not None and day > end for account in selection.accounts
    ):
        after = select_outputs(
            core,
            actor,
            account_ids=[account.id for account in selection.accounts],
            start=end + dt.timedelta(days=1),
            pending=False,
        )
        for txn in after.transactions:
            later.setdefault(txn.account_id, []).append(txn)
    return Export(selection, names, openings(selection, later))


def write(export: Export, fmt: str, out: TextIO) -> None:
    WRITERS[parse_format(fmt)](export, out)


def write_file(export: Export, fmt: str, path: Path) -> None:
    """Write to ``path`` atomically: a temporary file in the same folder, renamed over the
    target once complete, so that a reader never sees half a file and a failed export leaves
    the previous one in place."""
    if path.is_dir():
        raise BadInput(f"--output {path} is a folder; give a file name", field="output")
    folder = path.parent
    if not folder.is_dir():
        raise BadInput(f"--output: the folder {folder} does not exist", field="output")
    with replacing(path, newline="") as out:
        write(export, fmt, out)
