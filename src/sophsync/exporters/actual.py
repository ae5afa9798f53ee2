"""Push the local copy into an Actual Budget file, through Actual's own sync protocol.

Each sophsync account goes to one Actual account, each transaction to one Actual transaction
whose ``imported_id`` (Actual's ``financial_id``) is the transaction's stable id, the same key
Actual's bank import matches on. Running the push again therefore finds every transaction it
sent before and adds nothing; a pending transaction that posts keeps its stable id and is updated
in place (amount, date, cleared).

What the push owns in Actual, and what it leaves to the person:

- It creates an account once, named after the sophsync account, and never renames it; it writes
  a marker (``sophsync-account-7``) in the account's notes so that it finds the account again
  even without the mapping file.
- On a new transaction it sets payee (the merchant, else the description), notes (the
  description), the imported payee (the bank's text), cleared (not pending) and Actual's pending
  flag, then runs the budget's rules on it, like Actual's own import. Later runs only follow
  what the bank changes: amount, date and the pending state. Payee, notes and category are the
  person's (and the rules') to change afterwards.
- One "Starting Balance" transaction per account (imported id ``sophsync-account-7-start``),
  dated the day before the first transaction pushed, makes Actual's balance (the sum of the
  account's transactions) equal sophsync's balance. Each run recomputes it from the balance and
  the transactions pushed, so a balance that moved without a transaction (interest posted
  late, a bank correction) is followed too.
- A transaction the bank dropped (an authorisation that never posted) or that a person deleted
  in sophsync is deleted in Actual as well.

The mapping file (JSON) keeps which Actual account each sophsync account goes to, with the
server and the budget it belongs to; it never holds a password.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from actual import Actual
from actual.database import Accounts, Notes, Payees, Transactions
from actual.exceptions import (
    ActualDecryptionError,
    ActualEncryptionError,
    ActualError,
    AuthorizationError,
)
from actual.queries import (
    create_account,
    create_payee,
    create_transaction_from_ids,
    get_or_create_category,
    get_ruleset,
)
from actual.utils.conversions import current_timestamp, date_to_int
from sqlalchemy import select
from sqlmodel import Session, col

from ..core.app import Core
from ..core.families import Actor
from ..core.importer import to_decimal
from ..errors import BadInput, Conflict, Retryable, SophsyncError
from ..store.models import AccountType, Transaction, TxnStatus
from .atomic import replacing
from .source import ID_PREFIX, OutputAccount, OutputTransaction, Selection, select_outputs

#: The mapping file's name in the data folder when ``--config`` is not given.
DEFAULT_CONFIG_NAME = "actual.json"
#: Account types kept off budget: Actual budgets the money you can spend; investments and loans
#: are tracked there (their balances count in net worth) but not budgeted.
OFF_BUDGET_TYPES = frozenset({AccountType.INVESTMENT, AccountType.LOAN})
STARTING_PAYEE = "Starting Balance"
STARTING_CATEGORY = "Starting Balances"
STARTING_GROUP = "Income"
_TRANSACTION_ID = re.compile(rf"^{re.escape(ID_PREFIX)}(\d+)$")
_ACCOUNT_MARKER = re.compile(rf"\b{re.escape(ID_PREFIX)}account-(\d+)\b")


@dataclass(frozen=True)
class ActualTarget:
    """Where to push: the server, its password, the budget's sync id (or its name)."""

    url: str
    password: str
    budget: str
    encryption_password: str | None = None

    def __repr__(self) -> str:  # the passwords never reach a log or a traceback
        return f"ActualTarget(url={self.url!r}, budget={self.budget!r})"


@dataclass
class Mapping:
    """The mapping file: which Actual account each sophsync account is pushed to."""

    server: str
    budget: str
    #: sophsync account id -> Actual account id.
    accounts: dict[int, str] = field(default_factory=dict)
    #: sophsync account id -> the Actual account's name when it was mapped (for people).
    names: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "budget": self.budget,
            "accounts": {
                str(account_id): {"actual_id": actual_id, "name": self.names.get(account_id, "")}
                for account_id, actual_id in sorted(self.accounts.items())
            },
        }


@dataclass
class AccountPush:
    """What one account's push did."""

    account_id: int
    name: str
    actual_id: str
    actual_name: str
    #: ``created`` in Actual by this run, ``mapped`` from the mapping file, or ``found`` again
    #: in Actual (by its marker or its transactions) when the file did not know it.
    how: str
    added: int = 0
    #: New here, but merged with a transaction entered by hand in Actual (same amount, near date).
    matched: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    balance: Decimal = Decimal(0)
    currency: str = "USD"


@dataclass
class PushResult:
    server: str
    budget: str
    budget_name: str
    config: str
    accounts: list[AccountPush]

    def total(self, name: str) -> int:
        return sum(int(getattr(account, name)) for account in self.accounts)

    @property
    def created(self) -> int:
        return sum(1 for account in self.accounts if account.how == "created")

    def summary(self) -> dict[str, int]:
        return {
            "accounts_created": self.created,
            "accounts_mapped": len(self.accounts) - self.created,
            "added": self.total("added"),
            "matched": self.total("matched"),
            "updated": self.total("updated"),
            "unchanged": self.total("unchanged"),
            "removed": self.total("removed"),
        }


def default_config(data_dir: Path) -> Path:
    return data_dir / DEFAULT_CONFIG_NAME


def normalise_url(url: str) -> str:
    value = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise BadInput(
            f"--url must be the Actual server's address like http://127.0.0.1:5006, not {url!r}",
            field="url",
        )
    return value


def load_mapping(path: Path) -> Mapping | None:
    """The mapping file at ``path``, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        message = f"Cannot read the mapping file {path}: {error.strerror}"
        raise BadInput(message, field="config") from None
    try:
        data = json.loads(text, parse_float=Decimal)
        accounts = {
            int(key): str(value["actual_id"]) for key, value in dict(data["accounts"]).items()
        }
        names = {int(key): str(value.get("name", "")) for key, value in data["accounts"].items()}
        return Mapping(str(data["server"]), str(data["budget"]), accounts, names)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadInput(
            f"The mapping file {path} is not one sophsync wrote (JSON with server, budget and "
            "accounts); fix it, or move it away to map the accounts again",
            field="config",
        ) from None


def save_mapping(path: Path, mapping: Mapping) -> None:
    """Write the file atomically: a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as out:
        json.dump(mapping.to_json(), out, indent=2)
        out.write("\n")


@contextmanager
def _logged_in(url: str, password: str, folder: str) -> Iterator[Actual]:
    """An actualpy session; its HTTP client is closed even when logging in fails (actualpy logs
    in from its constructor and would leave the connection open)."""
    actual = Actual.__new__(Actual)
    try:
        Actual.__init__(actual, url, password=password, data_dir=folder)
    except BaseException:
        client = getattr(actual, "_requests_session", None)
        if isinstance(client, httpx.Client):
            client.close()
        raise
    with actual:
        yield actual


@contextmanager
def connected(target: ActualTarget) -> Iterator[tuple[Actual, str]]:
    """A session on the budget, downloaded into a temporary folder; the budget's name."""
    url = normalise_url(target.url)
    with tempfile.TemporaryDirectory(prefix="sophsync-actual-") as folder:
        try:
            with _logged_in(url, target.password, folder) as actual:
                files = [f for f in actual.list_user_files().data if not f.deleted]
                chosen = [f for f in files if target.budget in {f.group_id, f.file_id}]
                if not chosen:
                    chosen = [f for f in files if f.name == target.budget]
                if len(chosen) != 1:
                    have = ", ".join(f"{f.name!r} (sync id {f.group_id})" for f in files)
                    what = "several budgets are named" if chosen else "no budget has the sync id"
                    raise BadInput(
                        f"--budget: {what} {target.budget!r} on {url}; "
                        + (f"the server has {have}" if files else "the server has no budget yet"),
                        field="budget",
                    )
                if chosen[0].encrypt_key_id and not target.encryption_password:
                    raise BadInput(
                        "This budget is end-to-end encrypted: give its key with "
                        "--encryption-password",
                        field="encryption-password",
                    )
                actual.set_file(chosen[0])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    actual.download_budget(target.encryption_password)
                yield actual, chosen[0].name
        except (ActualDecryptionError, ActualEncryptionError):
            raise BadInput(
                "The budget's encryption password is wrong: check --encryption-password",
                field="encryption-password",
            ) from None
        except AuthorizationError as error:
            if "'429'" in str(error):
                raise Retryable(
                    f"The Actual server at {url} refuses to log in for now (HTTP 429: too many "
                    "requests or failed logins); try again in a few minutes",
                    code="actual_rate_limited",
                ) from None
            if "validate password" in str(error) or "invalid-password" in str(error):
                raise BadInput(
                    f"The Actual server at {url} refused the password: check --password "
                    "(or ACTUAL_PASSWORD)",
                    field="password",
                ) from None
            raise BadInput(
                f"Could not log in to the Actual server at {url}: is --url an Actual server, "
                "and is --password right?",
                field="url",
            ) from None
        except httpx.TransportError as error:
            raise Retryable(
                f"Cannot reach the Actual server at {url} ({type(error).__name__}); check --url "
                "and that the server is running",
                code="actual_unreachable",
            ) from None
        except httpx.HTTPStatusError as error:
            if error.response.status_code == 429:
                wait = _retry_after(error.response)
                raise Retryable(
                    f"The Actual server at {url} limits how often it is called (HTTP 429): "
                    f"try again in {wait} seconds",
                    retry_after=wait,
                    code="actual_rate_limited",
                ) from None
            raise Retryable(
                f"The Actual server at {url} answered HTTP {error.response.status_code} to "
                f"{error.request.url.path}; check --url and try again",
                code="actual_error",
            ) from None
        except SophsyncError:
            raise
        except ActualError as error:
            raise SophsyncError(
                f"Actual could not open the budget {target.budget!r}: {error}", code="actual_error"
            ) from None


log = logging.getLogger(__name__)

#: Whole pushes tried when the server rate-limits, and the longest wait accepted between two.
RATE_LIMIT_ATTEMPTS = 3
MAX_RATE_LIMIT_WAIT = 90


def _retry_after(response: httpx.Response) -> int:
    """Seconds to wait, from ``Retry-After`` or the ``RateLimit-Reset`` header the Actual
    server sends (a minute when neither says)."""
    for header in ("retry-after", "ratelimit-reset"):
        value = response.headers.get(header, "").strip()
        if value.isdigit():
            return max(1, int(value))
    return 60


def push(
    core: Core,
    actor: Actor,
    target: ActualTarget,
    *,
    config: Path | None = None,
    account_ids: Sequence[int] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Push the household's accounts (all, or those named) and their transactions dated within
    [start, end] into the Actual budget. Running it again changes nothing in Actual.

    An Actual server limits how often it is called (HTTP 429). The push is idempotent, so when
    the server asks for a short wait it waits and runs again from the start, a few times."""
    for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
        try:
            return _push_once(core, actor, target, config, account_ids, start, end)
        except Retryable as error:
            wait = error.retry_after
            if error.code != "actual_rate_limited" or wait is None or wait > MAX_RATE_LIMIT_WAIT:
                raise
            if attempt == RATE_LIMIT_ATTEMPTS:
                raise
            log.info("The Actual server asks to wait %s s; pushing again then", wait)
            sleep(wait)
    raise AssertionError("unreachable")


def _push_once(
    core: Core,
    actor: Actor,
    target: ActualTarget,
    config: Path | None,
    account_ids: Sequence[int] | None,
    start: dt.date | None,
    end: dt.date | None,
) -> PushResult:
    url = normalise_url(target.url)
    path = config if config is not None else default_config(core.settings.data_dir)
    mapping = load_mapping(path)
    selection = select_outputs(core, actor, account_ids=account_ids, start=start, end=end)
    with connected(target) as (actual, budget_name):
        sync_id = actual.file.group_id or target.budget
        if mapping is None:
            mapping = Mapping(url, sync_id)
        elif mapping.budget != sync_id:
            # The sync id names one budget wherever the server is reached from, so a file
            # follows its budget when the server's address changes, and only then.
            raise BadInput(
                f"The mapping file {path} is for the budget {mapping.budget}, not {sync_id}: "
                "give each budget its own file with --config",
                field="config",
            )
        mapping.server = url
        results = _push(core, actual, selection, mapping, path)
        actual.commit()
    save_mapping(path, mapping)
    return PushResult(url, sync_id, budget_name, str(path), results)


class _Budget:
    """The pieces of the downloaded budget the push looks up, read once."""

    def __init__(self, actual: Actual) -> None:
        self.actual = actual
        self.session = actual.session
        self.accounts = {row.id: row for row in self.session.scalars(select(Accounts))}
        self.notes = {row.id: row.note or "" for row in self.session.scalars(select(Notes))}
        self.payees: dict[str, Payees] = {}
        for payee in self.session.scalars(
            select(Payees).where(col(Payees.tombstone) == 0, col(Payees.transfer_acct).is_(None))
        ):
            if payee.name:
                self.payees.setdefault(payee.name, payee)
        #: Our transactions in Actual, by account, then by imported id.
        self.ours: dict[str, dict[str, Transactions]] = {}
        query = select(Transactions).where(
            col(Transactions.financial_id).like(f"{ID_PREFIX}%"),
            col(Transactions.tombstone) == 0,
            col(Transactions.is_child) == 0,
        )
        for row in self.session.scalars(query):
            if row.financial_id:
                self.ours.setdefault(row.acct, {})[row.financial_id] = row

    def payee(self, name: str) -> Payees:
        found = self.payees.get(name)
        if found is None:
            found = self.payees[name] = create_payee(self.session, name)
        return found

    def marked(self) -> dict[int, str]:
        """sophsync account id -> the live Actual account whose notes carry its marker."""
        found: dict[int, str] = {}
        for account_id, account in self.accounts.items():
            if account.tombstone:
                continue
            for match in _ACCOUNT_MARKER.finditer(self.notes.get(f"account-{account_id}", "")):
                found.setdefault(int(match.group(1)), account_id)
        return found


def _display_names(accounts: Sequence[OutputAccount]) -> dict[int, str]:
    """Names for new Actual accounts: the account's own, with the bank and the last digits
    added when two accounts share a name."""
    counts: dict[str, int] = {}
    for account in accounts:
        counts[account.name] = counts.get(account.name, 0) + 1
    names: dict[int, str] = {}
    for account in accounts:
        name = account.name
        if counts[name] > 1:
            extra = " ".join(part for part in (account.institution, account.mask) if part)
            name = f"{name} ({extra or account.stable_id})"
        names[account.id] = name
    return names


def _resolve_account(
    budget: _Budget,
    account: OutputAccount,
    mapping: Mapping,
    path: Path,
    name: str,
    marked: dict[int, str],
    transactions: Sequence[OutputTransaction],
) -> tuple[Accounts, str]:
    actual_id = mapping.accounts.get(account.id)
    if actual_id is not None:
        row = budget.accounts.get(actual_id)
        if row is None or row.tombstone:
            raise Conflict(
                f"The Actual account {mapping.names.get(account.id) or actual_id!r} that "
                f"sophsync account {account.id} ({account.name}) is pushed to was deleted in "
                f'Actual: remove "{account.id}" from {path} to create it again',
                code="actual_account_deleted",
            )
        return row, "mapped"
    actual_id = marked.get(account.id)
    if actual_id is None:
        # The account holding most of this account's transactions, if any.
        wanted = {txn.stable_id for txn in transactions}
        best = 0
        for candidate, rows in budget.ours.items():
            row = budget.accounts.get(candidate)
            if row is None or row.tombstone:
                continue
            hits = len(wanted.intersection(rows))
            if hits > best:
                best, actual_id = hits, candidate
    if actual_id is not None:
        return budget.accounts[actual_id], "found"
    row = create_account(budget.session, name, off_budget=account.type in OFF_BUDGET_TYPES)
    note = (
        f"Pushed by sophsync: {account.stable_id}. Keep this marker so that sophsync finds "
        "this account again."
    )
    budget.session.add(Notes(id=f"account-{row.id}", note=note))
    budget.accounts[row.id] = row
    return row, "created"


def _removed_ids(core: Core, candidates: set[int]) -> set[int]:
    """Those of ``candidates`` that the store no longer holds as live transactions: removed by
    the bank, deleted by a person, or gone. A live one is never deleted downstream, whichever
    account it is found in."""
    if not candidates:
        return set()
    live: set[int] = set()
    ordered = sorted(candidates)
    with core.session() as session:
        for index in range(0, len(ordered), 500):
            chunk = ordered[index : index + 500]
            live.update(
                session.scalars(
                    select(Transaction.id).where(
                        Transaction.id.in_(chunk),
                        Transaction.status == TxnStatus.ACTIVE.value,
                        Transaction.deleted.is_(False),
                    )
                )
            )
    return candidates - live


def _push(
    core: Core, actual: Actual, selection: Selection, mapping: Mapping, path: Path
) -> list[AccountPush]:
    budget = _Budget(actual)
    marked = budget.marked()
    names = _display_names(selection.accounts)
    results: list[AccountPush] = []
    used: dict[str, int] = {
        actual_id: account_id
        for account_id, actual_id in mapping.accounts.items()
        if account_id not in {account.id for account in selection.accounts}
    }
    for account in selection.accounts:
        transactions = selection.of_account(account.id)
        row, how = _resolve_account(
            budget, account, mapping, path, names[account.id], marked, transactions
        )
        other = used.setdefault(row.id, account.id)
        if other != account.id:
            raise BadInput(
                f"sophsync accounts {other} and {account.id} are both pushed to the Actual "
                f"account {row.name!r}: give each its own in {path}",
                field="config",
            )
        mapping.accounts[account.id] = row.id
        mapping.names[account.id] = row.name or names[account.id]
        result = AccountPush(
            account.id,
            account.name,
            row.id,
            row.name or "",
            how,
            balance=account.balance,
            currency=account.currency,
        )
        _push_transactions(core, budget, row, account, transactions, result)
        results.append(result)
    return results


def _cents(txn: OutputTransaction) -> int:
    """Actual keeps amounts in hundredths of the unit, whatever the currency."""
    return int(txn.amount * 100)


def _push_transactions(
    core: Core,
    budget: _Budget,
    row: Accounts,
    account: OutputAccount,
    transactions: Sequence[OutputTransaction],
    result: AccountPush,
) -> None:
    session = budget.session
    ours = budget.ours.setdefault(row.id, {})
    merged: set[str] = set()
    added: list[Transactions] = []
    # One flush at the end rather than one per query: the lookups below only need rows that
    # were in Actual before this run (new rows carry an imported id, merged ones are listed).
    with session.no_autoflush:
        _push_each(budget, row, transactions, ours, merged, added, result)
    session.flush()
    if added:
        get_ruleset(session).run(added)
    _remove_gone(core, account, transactions, ours, result)
    _starting_balance(budget, row, account, ours, result)


def _push_each(
    budget: _Budget,
    row: Accounts,
    transactions: Sequence[OutputTransaction],
    ours: dict[str, Transactions],
    merged: set[str],
    added: list[Transactions],
    result: AccountPush,
) -> None:
    session = budget.session
    for txn in transactions:
        existing = ours.get(txn.stable_id)
        if existing is not None:
            if _follow_bank(existing, txn):
                result.updated += 1
            else:
                result.unchanged += 1
            continue
        payee = budget.payee(txn.payee) if txn.payee else None
        match = _entered_by_hand(session, row, txn, merged)
        if match is not None:
            # Actual's own import does the same: the bank's copy of a transaction the person
            # typed in takes the imported id; what the person wrote stays.
            match.financial_id = txn.stable_id
            match.imported_description = txn.description
            match.set_date(txn.date)
            match.pending = int(txn.pending)
            match.cleared = int(not txn.pending)
            if match.payee_id is None and payee is not None:
                match.payee_id = payee.id
            if not match.notes:
                match.notes = txn.description
            merged.add(match.id)
            result.matched += 1
            ours[txn.stable_id] = match
            continue
        made = create_transaction_from_ids(
            session,
            txn.date,
            row.id,
            payee.id if payee is not None else None,
            txn.description,
            amount=txn.amount,
            imported_id=txn.stable_id,
            cleared=not txn.pending,
            imported_payee=txn.description,
            # Our payees are never an account's transfer payee: no transfer to make.
            process_payee=False,
        )
        made.pending = int(txn.pending)
        result.added += 1
        added.append(made)
        ours[txn.stable_id] = made


def _remove_gone(
    core: Core,
    account: OutputAccount,
    transactions: Sequence[OutputTransaction],
    ours: dict[str, Transactions],
    result: AccountPush,
) -> None:
    """Delete in Actual what sophsync no longer holds (never posted, deleted by a person)."""
    wanted = {txn.stable_id for txn in transactions}
    candidates: dict[int, str] = {}
    for imported_id in ours:
        found = _TRANSACTION_ID.match(imported_id)
        if found and imported_id not in wanted:
            candidates[int(found.group(1))] = imported_id
    for gone in _removed_ids(core, set(candidates)):
        ours.pop(candidates[gone]).delete()
        result.removed += 1


def _follow_bank(existing: Transactions, txn: OutputTransaction) -> bool:
    """Bring what the bank changes over (a pending transaction posting: amount, date, state);
    True when something changed."""
    changed = False
    if existing.amount != _cents(txn):
        existing.amount = _cents(txn)
        changed = True
    if existing.get_date() != txn.date:
        existing.set_date(txn.date)
        changed = True
    if bool(existing.pending) != txn.pending:
        existing.pending = int(txn.pending)
        existing.cleared = int(not txn.pending)
        changed = True
    return changed


def _entered_by_hand(
    session: Session, row: Accounts, txn: OutputTransaction, merged: set[str]
) -> Transactions | None:
    """A transaction typed into Actual that is this one: same account and amount, dated within
    a week, imported by nothing; the nearest date wins, as in Actual's matcher."""
    query = select(Transactions).where(
        col(Transactions.acct) == row.id,
        col(Transactions.amount) == _cents(txn),
        col(Transactions.date) >= date_to_int(txn.date - dt.timedelta(days=7)),
        col(Transactions.date) <= date_to_int(txn.date + dt.timedelta(days=7)),
        col(Transactions.financial_id).is_(None),
        col(Transactions.tombstone) == 0,
        col(Transactions.is_child) == 0,
        col(Transactions.starting_balance_flag) == 0,
    )
    found: list[Transactions] = [
        candidate for candidate in session.scalars(query) if candidate.id not in merged
    ]
    if not found:
        return None
    found.sort(key=lambda candidate: (abs((candidate.get_date() - txn.date).days), candidate.id))
    return found[0]


def _starting_balance(
    budget: _Budget,
    row: Accounts,
    account: OutputAccount,
    ours: dict[str, Transactions],
    result: AccountPush,
) -> None:
    """Keep the "Starting Balance" transaction at what makes Actual's balance equal ours."""
    session = budget.session
    start_id = f"{account.stable_id}-start"
    session.flush()
    pushed = [txn for key, txn in ours.items() if key != start_id and _TRANSACTION_ID.match(key)]
    total = sum(int(txn.amount or 0) for txn in pushed)
    amount = to_decimal(account.balance_minor, account.currency) * 100 - total
    cents = int(amount)
    first = min((txn.get_date() for txn in pushed), default=None)
    if first is None:
        moment = account.balance_at
        first = (moment.date() if moment is not None else dt.date.today()) + dt.timedelta(days=1)
    day = first - dt.timedelta(days=1)
    existing = ours.get(start_id)
    if existing is None:
        category = None
        if not (row.offbudget or 0):
            category = get_or_create_category(session, STARTING_CATEGORY, STARTING_GROUP).id
        created = Transactions(
            id=str(uuid.uuid4()),
            acct=row.id,
            date=0,
            amount=cents,
            category_id=category,
            payee_id=budget.payee(STARTING_PAYEE).id,
            notes="Balance before the first transaction sophsync pushed",
            financial_id=start_id,
            cleared=1,
            reconciled=0,
            starting_balance_flag=1,
            sort_order=float(current_timestamp()),
        )
        created.set_date(day)
        session.add(created)
        ours[start_id] = created
        return
    changed = False
    if existing.amount != cents:
        existing.amount = cents
        changed = True
    if existing.get_date() != day:
        existing.set_date(day)
        changed = True
    if changed:
        result.updated += 1


__all__ = [
    "DEFAULT_CONFIG_NAME",
    "AccountPush",
    "ActualTarget",
    "Mapping",
    "PushResult",
    "default_config",
    "load_mapping",
    "push",
    "save_mapping",
]
