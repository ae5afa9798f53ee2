"""Push the household's accounts and transactions into Firefly III, the way its data importer does.

One call does the importer's whole workflow: map each sophsync account to a Firefly asset or
liability account (creating it on the first run), let Firefly find or create the expense and
revenue accounts of the payees (or use the ones the mapping file names), turn a payment from one
linked account into another into one Firefly movement instead of two, and send every
transaction with its stable id as ``external_id``.

Running it again adds nothing, on three counts, so that losing any one of them duplicates
nothing: the mapping file lists the stable ids already pushed (no request at all for those);
before posting, one paged listing of Firefly's transactions in the date range collects the
``external_id`` values already there; and every POST asks Firefly to refuse a duplicate
(``error_if_duplicate_hash``), whose "Duplicate of transaction #N." answer counts as "already
there". The payload of a transaction is built from the store alone, so it is byte-for-byte the
same on every run and Firefly's hash recognises it.

The client is a thin layer over httpx: a handful of endpoints of Firefly's REST API v1, bearer
token, bounded retries on 429 and 5xx. The token is never stored, logged or put in a message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import tenacity

from ..core.app import Core
from ..core.families import Actor
from ..core.importer import to_decimal
from ..errors import BadInput, NotFound, Retryable, SophsyncError
from ..store.models import AccountType
from .atomic import replacing
from .source import OutputAccount, OutputTransaction, Selection, select_outputs

log = logging.getLogger(__name__)

#: The mapping file's name in the data folder.
CONFIG_NAME = "firefly.json"
CONFIG_VERSION = 1
#: Prefix of the marker written in the notes of the accounts the push creates, so that a
#: lost mapping file finds them again instead of creating them twice.
ACCOUNT_MARKER = "sophsync account:"
#: Firefly's answer to a transaction it already holds (``error_if_duplicate_hash``).
DUPLICATE = re.compile(r"Duplicate of transaction #(\d+)")
#: Words that say a transaction moves money between the household's own accounts.
TRANSFER_HINT = re.compile(
    r"\b(TRANSFER|XFER|PAYMENT|PMT|CONTRIBUTION|BILL ?PAY|PAYOFF)\b", re.IGNORECASE
)
DEFAULT_TRANSFER_DAYS = 3
PAGE_SIZE = 500
LIABILITY_TYPES = frozenset({"liability", "liabilities", "loan", "debt", "mortgage"})


class FireflyError(SophsyncError):
    """Firefly III could not be reached, or refused something for a reason we cannot fix."""

    code = "firefly_error"
    exit_code = 1


# --- the mapping file -----------------------------------------------------------------------


@dataclass
class FireflyConfig:
    """The mapping file (JSON; see docs/outputs.md): what the next run reuses. No token."""

    url: str | None = None
    #: sophsync account id -> Firefly account id; ``None`` leaves the account out of the push.
    accounts: dict[int, int | None] = field(default_factory=dict)
    #: Payee (merchant, else description) -> an existing Firefly expense or revenue account id.
    opposing: dict[str, int] = field(default_factory=dict)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    include_pending: bool = False
    apply_rules: bool = True
    transfer_days: int = DEFAULT_TRANSFER_DAYS
    check_existing: bool = True
    tags: list[str] = field(default_factory=list)
    #: Stable ids already in Firefly -> the id of the Firefly transaction (group) holding them.
    pushed: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> FireflyConfig:
        """The file at ``path``, or an empty mapping when there is none yet."""
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise BadInput(
                f"{path} is not valid JSON (line {error.lineno}: {error.msg}): fix or delete it",
                field="config",
            ) from None
        except OSError as error:
            raise BadInput(f"Cannot read {path}: {error.strerror}", field="config") from None
        return cls.from_json(raw, str(path))

    @classmethod
    def from_json(cls, raw: Any, where: str) -> FireflyConfig:
        def bad(message: str) -> BadInput:
            return BadInput(f"{where}: {message}", field="config")

        if not isinstance(raw, dict):
            raise bad("expected a JSON object")
        known = {
            "version",
            "url",
            "accounts",
            "opposing",
            "date_range",
            "options",
            "pushed",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise bad(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        if raw.get("version", CONFIG_VERSION) != CONFIG_VERSION:
            raise bad(f"version must be {CONFIG_VERSION}")
        config = cls()
        url = raw.get("url")
        if url is not None and not isinstance(url, str):
            raise bad("url must be text")
        config.url = url or None
        accounts = raw.get("accounts", {})
        if not isinstance(accounts, dict):
            raise bad('accounts must be an object like {"3": 12}')
        for key, value in accounts.items():
            if not str(key).isdigit():
                raise bad(f"accounts: {key!r} is not a sophsync account id")
            config.accounts[int(key)] = None if value is None else _firefly_id(value, bad, key)
        opposing = raw.get("opposing", {})
        if not isinstance(opposing, dict):
            raise bad('opposing must be an object like {"Whole Foods Market": 34}')
        config.opposing = {str(k): _firefly_id(v, bad, k) for k, v in opposing.items()}
        dates = raw.get("date_range", {}) or {}
        if not isinstance(dates, dict):
            raise bad('date_range must be an object like {"from": "2025-01-01", "to": null}')
        config.date_from = _config_date(dates.get("from"), bad, "date_range.from")
        config.date_to = _config_date(dates.get("to"), bad, "date_range.to")
        options = raw.get("options", {}) or {}
        if not isinstance(options, dict):
            raise bad("options must be an object")
        for name in ("include_pending", "apply_rules", "check_existing"):
            if name in options:
                if not isinstance(options[name], bool):
                    raise bad(f"options.{name} must be true or false")
                setattr(config, name, options[name])
        if "transfer_days" in options:
            days = options["transfer_days"]
            if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 10:
                raise bad("options.transfer_days must be a whole number from 0 to 10")
            config.transfer_days = days
        tags = options.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise bad('options.tags must be a list of text, like ["sophsync"]')
        config.tags = list(tags)
        pushed = raw.get("pushed", {})
        if not isinstance(pushed, dict):
            raise bad("pushed must be an object")
        config.pushed = {str(k): _firefly_id(v, bad, k) for k, v in pushed.items()}
        return config

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CONFIG_VERSION,
            "url": self.url,
            "accounts": {str(k): self.accounts[k] for k in sorted(self.accounts)},
            "opposing": dict(sorted(self.opposing.items())),
            "date_range": {
                "from": self.date_from.isoformat() if self.date_from else None,
                "to": self.date_to.isoformat() if self.date_to else None,
            },
            "options": {
                "include_pending": self.include_pending,
                "apply_rules": self.apply_rules,
                "transfer_days": self.transfer_days,
                "check_existing": self.check_existing,
                "tags": self.tags,
            },
            "pushed": dict(sorted(self.pushed.items(), key=lambda item: _id_order(item[0]))),
        }

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as out:
            out.write(json.dumps(self.to_json(), indent=2) + "\n")


def _firefly_id(value: Any, bad: Any, key: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise bad(f"{key!r}: {value!r} is not a Firefly III account id (a whole number)")
    return int(value)


def _config_date(value: Any, bad: Any, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise bad(f"{name} must be a date like 2025-01-31, not {value!r}") from None


def _id_order(stable_id: str) -> tuple[int, str]:
    tail = stable_id.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, stable_id)


def default_config_path(data_dir: Path) -> Path:
    return data_dir / CONFIG_NAME


# --- the HTTP client ------------------------------------------------------------------------


class _TryAgain(Exception):
    """A 429 or 5xx answer or a timeout: worth another attempt."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def api_base(url: str) -> str:
    """Firefly's API root for a server URL: ``https://ff.example.org`` -> ``.../api``."""
    cleaned = url.strip().rstrip("/")
    try:
        parsed = httpx.URL(cleaned) if cleaned else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
        raise BadInput(
            f"--url must be Firefly III's address like https://firefly.example.org, not {url!r}",
            field="url",
        )
    if parsed.userinfo:
        raise BadInput(
            "--url must not hold a user name or password: the token is the only credential",
            field="url",
        )
    return cleaned if cleaned.endswith("/api") else f"{cleaned}/api"


class FireflyClient:
    """The few Firefly III endpoints the push needs. ``transport`` is for tests."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        attempts: int = 4,
        max_wait: float = 8.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token.strip():
            raise BadInput("The Firefly III token is empty: give --token", field="token")
        self.url = url.strip().rstrip("/")
        self.base = api_base(url)
        self.attempts = max(1, attempts)
        self.max_wait = max_wait
        self._http = httpx.Client(
            base_url=self.base,
            headers={
                "Authorization": f"Bearer {token.strip()}",
                "Accept": "application/vnd.api+json, application/json",
                "User-Agent": "sophsync",
            },
            timeout=timeout,
            transport=transport,
        )
        #: Requests sent, by "METHOD path", for the report and the tests.
        self.requests: dict[str, int] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FireflyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        backoff = min(self.max_wait, 0.25 * 2.0 ** (state.attempt_number - 1))
        if isinstance(error, _TryAgain) and error.retry_after is not None:
            return float(min(self.max_wait, max(backoff, error.retry_after)))
        return float(backoff)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """One call, retried on 429, 5xx and timeouts; 401 and unreachable become errors a
        person can act on."""
        key = f"{method} {path.split('?')[0]}"

        def once() -> httpx.Response:
            self.requests[key] = self.requests.get(key, 0) + 1
            try:
                response = self._http.request(method, path, params=params, json=body)
            except httpx.TimeoutException as error:
                raise _TryAgain(f"no answer in time ({type(error).__name__})", None) from None
            if response.status_code == 429 or response.status_code >= 500:
                raise _TryAgain(f"HTTP {response.status_code}", _retry_after(response))
            return response

        try:
            for attempt in tenacity.Retrying(
                stop=tenacity.stop_after_attempt(self.attempts),
                wait=self._wait,
                retry=tenacity.retry_if_exception_type(_TryAgain),
                reraise=True,
            ):
                with attempt:
                    response = once()
        except _TryAgain as error:
            raise Retryable(
                f"Firefly III at {self.url} is busy or failing ({error}) after "
                f"{self.attempts} attempts: try again later",
                retry_after=error.retry_after,
                code="firefly_busy",
            ) from None
        except httpx.TransportError as error:
            raise FireflyError(
                f"Cannot reach Firefly III at {self.url} ({type(error).__name__}): "
                "check --url and that the server runs",
                code="firefly_unreachable",
            ) from None
        if response.status_code == 401:
            raise BadInput("Firefly III refused the token: check --token", field="token")
        if response.status_code == 403:
            raise BadInput(
                "Firefly III says the token may not do this: use a Personal Access Token "
                "of the owner",
                field="token",
            )
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code != 200:
            raise FireflyError(
                f"Firefly III answered {method} {path} with HTTP {response.status_code}: "
                f"{_message(response)}"
            )
        return _body(response, f"{method} {path}")

    def about(self) -> dict[str, Any]:
        """The server's version; also proves the URL and the token."""
        value = self.json("GET", "/v1/about")
        data = value.get("data") if isinstance(value, dict) else None
        if not isinstance(data, dict):
            raise FireflyError(
                f"{self.url} does not look like Firefly III (no version in /api/v1/about): "
                "check --url"
            )
        return data

    def pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paged listing."""
        page = 1
        while True:
            value = self.json("GET", path, params={**params, "limit": PAGE_SIZE, "page": page})
            yield from value.get("data", [])
            pagination = value.get("meta", {}).get("pagination", {})
            if page >= int(pagination.get("total_pages", 1) or 1):
                return
            page += 1

    def accounts(self, kind: str) -> list[dict[str, Any]]:
        return list(self.pages("/v1/accounts", {"type": kind}))

    def account(self, firefly_id: int) -> dict[str, Any] | None:
        response = self.request("GET", f"/v1/accounts/{firefly_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise FireflyError(
                f"Firefly III answered GET /v1/accounts/{firefly_id} with HTTP "
                f"{response.status_code}: {_message(response)}"
            )
        data = _body(response, "GET /v1/accounts")["data"]
        return data if isinstance(data, dict) else None

    def create_account(self, body: dict[str, Any]) -> httpx.Response:
        return self.request("POST", "/v1/accounts", body=body)

    def transactions(self, start: dt.date, end: dt.date) -> Iterator[dict[str, Any]]:
        params = {"start": start.isoformat(), "end": end.isoformat()}
        return self.pages("/v1/transactions", params)

    def store_transaction(self, body: dict[str, Any]) -> httpx.Response:
        return self.request("POST", "/v1/transactions", body=body)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _body(response: httpx.Response, what: str) -> Any:
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise FireflyError(f"Firefly III sent something that is not JSON for {what}") from None


def _message(response: httpx.Response) -> str:
    """Firefly's own words: the validation messages, else the message, else the status."""
    try:
        value = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(value, dict):
        return f"HTTP {response.status_code}"
    errors = value.get("errors")
    if isinstance(errors, dict):
        texts = [
            str(t) for messages in errors.values() if isinstance(messages, list) for t in messages
        ]
        if texts:
            return "; ".join(dict.fromkeys(texts))
    return str(value.get("message") or f"HTTP {response.status_code}")


# --- what is pushed -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A sophsync account's Firefly account."""

    firefly_id: int
    liability: bool


@dataclass(frozen=True)
class AccountOutcome:
    account_id: int
    name: str
    firefly_id: int | None
    #: ``created``, ``mapped`` (from the file), ``found`` (by its marker or name), ``skipped``,
    #: or ``to create`` in a dry run.
    action: str
    kind: str


@dataclass
class PushReport:
    """What a push did (or, with ``dry_run``, would do)."""

    url: str
    config_path: str
    start: dt.date | None
    end: dt.date | None
    dry_run: bool
    accounts: list[AccountOutcome] = field(default_factory=list)
    #: Firefly transactions created (a transfer counts once).
    created: int = 0
    #: Of those, movements between two linked accounts.
    transfers: int = 0
    #: Skipped because the mapping file or Firefly already held them.
    already: int = 0
    #: Of ``already``: those Firefly refused as duplicates (its hash).
    duplicates: int = 0
    #: Pending transactions left out (Firefly has no pending state).
    pending_skipped: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def accounts_created(self) -> int:
        return sum(1 for a in self.accounts if a.action == "created")


def _kind(account: OutputAccount) -> str:
    return account.type.value + (f"/{account.subtype}" if account.subtype else "")


def account_name(account: OutputAccount) -> str:
    """A name Firefly accepts: unique per type, so two banks' "Primary Checking" need the
    bank and the last digits."""
    extra = " ".join(part for part in (account.institution, account.mask) if part)
    return f"{account.name} ({extra})" if extra else account.name


def _marker(account: OutputAccount) -> str:
    return f"{ACCOUNT_MARKER} {account.stable_id}"


def _firefly_date(day: dt.date) -> str:
    # Noon UTC keeps the calendar day whatever time zone Firefly III runs in.
    return f"{day.isoformat()}T12:00:00+00:00"


def _amount(value: Decimal) -> str:
    return str(abs(value))


def opening_balance(account: OutputAccount, transactions: Sequence[OutputTransaction]) -> int:
    """The balance (store sign, minor units) before the first pushed day: today's balance less
    ``transactions``, everything dated from that day on. Once the days up to today are pushed,
    Firefly's balance equals sophsync's; with an end date, it is the balance of that day."""
    return account.balance_minor - sum(t.amount_minor for t in transactions)


def account_body(
    account: OutputAccount, opening_minor: int, opening_day: dt.date
) -> dict[str, Any]:
    """POST /v1/accounts for a new account: asset for cash and investments, liability (debt,
    mortgage or loan, "debit": the household owes it) for cards and loans."""
    body: dict[str, Any] = {
        "name": account_name(account),
        "currency_code": account.currency,
        "active": True,
        "include_net_worth": True,
        "notes": _marker(account),
        "opening_balance_date": _firefly_date(opening_day),
    }
    opening = to_decimal(opening_minor, account.currency)
    if account.is_liability:
        subtype = (account.subtype or "").lower()
        if account.type is AccountType.CREDIT_CARD:
            liability = "debt"
        elif "mortgage" in subtype:
            liability = "mortgage"
        else:
            liability = "loan"
        body.update(
            type="liability",
            liability_type=liability,
            liability_direction="debit",
            interest="0",
            interest_period="monthly",
            # Firefly takes the amount owed: the store's negative balance, turned around.
            opening_balance=str(-opening),
        )
    else:
        role = "savingAsset" if "saving" in (account.subtype or "").lower() else "defaultAsset"
        body.update(type="asset", account_role=role, opening_balance=str(opening))
    return body


def pair_transfers(
    transactions: Sequence[OutputTransaction],
    accounts: Mapping[int, OutputAccount],
    days: int = DEFAULT_TRANSFER_DAYS,
) -> list[tuple[OutputTransaction, OutputTransaction]]:
    """Money out of one account matched with the same amount into another, within ``days``.

    Both sides must say so: the other account's last digits in the text, or transfer words
    ("PAYMENT", "TRANSFER", ...) on both. Greedy in (date, id) order of the money-out side,
    the closest date winning, then the lowest id: the same store gives the same pairs, and
    each transaction pairs at most once.
    """
    incoming: dict[tuple[str, int], list[OutputTransaction]] = {}
    for txn in transactions:
        if txn.amount_minor > 0:
            incoming.setdefault((txn.currency, txn.amount_minor), []).append(txn)
    used: set[int] = set()
    pairs = []
    for out in sorted(
        (t for t in transactions if t.amount_minor < 0), key=lambda t: (t.date, t.id)
    ):
        best: tuple[int, int, OutputTransaction] | None = None
        for candidate in incoming.get((out.currency, -out.amount_minor), []):
            if candidate.id in used or candidate.account_id == out.account_id:
                continue
            gap = abs((candidate.date - out.date).days)
            if gap > days or not _says_transfer(out, candidate, accounts):
                continue
            rank = (gap, candidate.id)
            if best is None or rank < best[:2]:
                best = (gap, candidate.id, candidate)
        if best is not None:
            used.add(best[2].id)
            pairs.append((out, best[2]))
    return pairs


def _says_transfer(
    out: OutputTransaction, into: OutputTransaction, accounts: Mapping[int, OutputAccount]
) -> bool:
    def text(txn: OutputTransaction) -> str:
        return f"{txn.description} {txn.memo or ''}"

    for side, other in ((out, into), (into, out)):
        mask = accounts[other.account_id].mask
        if mask and len(mask) >= 3 and mask in text(side):
            return True
    return bool(TRANSFER_HINT.search(text(out)) and TRANSFER_HINT.search(text(into)))


@dataclass(frozen=True)
class Planned:
    """One Firefly transaction to create: the split, and the stable ids it carries."""

    stable_ids: tuple[str, ...]
    split: dict[str, Any]
    label: str
    transfer: bool
    date: dt.date


def _split_base(txn: OutputTransaction, tags: Sequence[str]) -> dict[str, Any]:
    split: dict[str, Any] = {
        "date": _firefly_date(txn.date),
        "amount": _amount(txn.amount),
        "currency_code": txn.currency,
        "description": txn.description.strip() or txn.payee or "(no description)",
        "external_id": txn.stable_id,
    }
    if txn.posted_date is not None:
        split["book_date"] = _firefly_date(txn.posted_date)
    if txn.category:
        split["category_name"] = txn.category
    notes = " ".join(part for part in (txn.memo, _check(txn)) if part)
    if notes:
        split["notes"] = notes
    if tags:
        split["tags"] = list(tags)
    return split


def _check(txn: OutputTransaction) -> str | None:
    return f"check {txn.check_number}" if txn.check_number else None


def _label(txn: OutputTransaction) -> str:
    return f"{txn.stable_id} ({txn.date}, {txn.description.strip()}, {txn.amount})"


@dataclass(frozen=True)
class Opposing:
    """A payee's Firefly account from the mapping file, and its kind (expense, revenue...)."""

    firefly_id: int
    kind: str

    def serves(self, money_out: bool) -> bool:
        """An expense account takes money out, a revenue account money in: the other way,
        Firefly wants the payee's account of the other kind, found or created by name. Any
        other kind is used as mapped, and Firefly says whether it fits."""
        if self.kind == "expense":
            return money_out
        if self.kind == "revenue":
            return not money_out
        return True


def plan_single(
    txn: OutputTransaction,
    target: Target,
    opposing: Mapping[str, Opposing],
    tags: Sequence[str],
) -> Planned:
    """A withdrawal (money out: the account pays the payee's expense account) or a deposit
    (money in: the payee's revenue account pays the account)."""
    split = _split_base(txn, tags)
    payee = txn.payee or "(unknown)"
    money_out = txn.amount_minor < 0
    mapped = opposing.get(payee)
    if mapped is not None and not mapped.serves(money_out):
        mapped = None
    if money_out:
        split.update(type="withdrawal", source_id=str(target.firefly_id))
        if mapped is not None:
            split["destination_id"] = str(mapped.firefly_id)
        else:
            split["destination_name"] = payee
    else:
        split.update(type="deposit", destination_id=str(target.firefly_id))
        if mapped is not None:
            split["source_id"] = str(mapped.firefly_id)
        else:
            split["source_name"] = payee
    return Planned((txn.stable_id,), split, _label(txn), False, txn.date)


def plan_transfer(
    out: OutputTransaction,
    into: OutputTransaction,
    source: Target,
    destination: Target,
    tags: Sequence[str],
) -> Planned:
    """One movement between two linked accounts. Firefly names it by its account kinds: a
    transfer between two assets (or two liabilities), a withdrawal from an asset into a
    liability (paying a card or a loan), a deposit from a liability into an asset."""
    split = _split_base(out, tags)
    if source.liability == destination.liability:
        kind = "transfer"
    elif destination.liability:
        kind = "withdrawal"
    else:
        kind = "deposit"
    split.update(
        type=kind,
        source_id=str(source.firefly_id),
        destination_id=str(destination.firefly_id),
        # The money-in side's stable id, so that a listing finds both.
        internal_reference=into.stable_id,
    )
    notes = " ".join(
        part
        for part in (split.get("notes"), f"transfer: {out.stable_id} -> {into.stable_id}")
        if part
    )
    split["notes"] = notes
    return Planned((out.stable_id, into.stable_id), split, _label(out), True, out.date)


# --- the push -------------------------------------------------------------------------------


def push(
    core: Core,
    actor: Actor,
    client: FireflyClient,
    config_path: Path,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    account_ids: Sequence[int] | None = None,
    dry_run: bool = False,
) -> PushReport:
    """Push the household into Firefly III; the mapping file at ``config_path`` is read first
    and written back (atomically, unless ``dry_run``). Without ``start`` and ``end``, the
    file's last date range is used."""
    config = FireflyConfig.load(config_path)
    if start is None and end is None:
        start, end = config.date_from, config.date_to
    if start is not None and end is not None and start > end:
        raise BadInput("--from must not be after --to", field="from")
    client.about()
    report = PushReport(client.url, str(config_path), start, end, dry_run)
    wanted = list(account_ids) if account_ids else None
    every = select_outputs(core, actor, account_ids=wanted, start=start, end=end)
    kept = tuple(t for t in every.transactions if config.include_pending or not t.pending)
    selection = Selection(every.accounts, kept, start, end)
    report.pending_skipped = len(every.transactions) - len(kept)
    accounts = [a for a in selection.accounts if config.accounts.get(a.id, 0) is not None]
    for account in selection.accounts:
        if account.id in config.accounts and config.accounts[account.id] is None:
            report.accounts.append(
                AccountOutcome(account.id, account.name, None, "skipped", _kind(account))
            )
    try:
        targets = _resolve_accounts(
            core, actor, client, config, selection, accounts, report, dry_run
        )
        opposing = _opposing(client, config)
        if config.check_existing:
            _learn_present(client, config, selection, targets)
        plans = _plan(selection, accounts, targets, opposing, config, report)
        _send(client, config, plans, report, dry_run)
    except BaseException:
        # Remember what did go in (accounts created, transactions sent), nothing else.
        if not dry_run:
            config.save(config_path)
        raise
    if not dry_run:
        config.url = client.url
        config.date_from, config.date_to = start, end
        config.save(config_path)
    return report


def _resolve_accounts(
    core: Core,
    actor: Actor,
    client: FireflyClient,
    config: FireflyConfig,
    selection: Selection,
    accounts: Sequence[OutputAccount],
    report: PushReport,
    dry_run: bool,
) -> dict[int, Target]:
    existing = {int(item["id"]): item for item in client.accounts("asset")}
    existing.update({int(item["id"]): item for item in client.accounts("liabilities")})
    by_marker: dict[str, int] = {}
    by_name: dict[str, int] = {}
    for firefly_id, item in sorted(existing.items()):
        attributes = item.get("attributes", {})
        for line in str(attributes.get("notes") or "").splitlines():
            if line.strip().startswith(ACCOUNT_MARKER):
                by_marker.setdefault(line.strip(), firefly_id)
        by_name.setdefault(str(attributes.get("name", "")), firefly_id)
    targets: dict[int, Target] = {}
    for account in accounts:
        mapped = config.accounts.get(account.id)
        if mapped is not None:
            held = existing.get(mapped)
            if held is None:
                raise NotFound(
                    f"Firefly III has no asset or liability account #{mapped}, which "
                    f"{report.config_path} maps to sophsync account {account.id} "
                    f"({account.name}): map it to another account there, or remove the entry "
                    f"to create a new one{_other_server(config, client)}",
                    code="firefly_account_missing",
                )
            targets[account.id] = Target(mapped, _is_liability(held))
            report.accounts.append(
                AccountOutcome(account.id, account.name, mapped, "mapped", _kind(account))
            )
            continue
        found = by_marker.get(_marker(account), by_name.get(account_name(account)))
        if found is not None:
            targets[account.id] = Target(found, _is_liability(existing[found]))
            config.accounts[account.id] = found
            report.accounts.append(
                AccountOutcome(account.id, account.name, found, "found", _kind(account))
            )
            continue
        if dry_run:
            # Counted as if it existed, so that the dry run reports its transactions too.
            targets[account.id] = Target(0, account.is_liability)
            report.accounts.append(
                AccountOutcome(account.id, account.name, None, "to create", _kind(account))
            )
            continue
        pushed_range = selection.of_account(account.id)
        first = selection.start or (pushed_range[0].date if pushed_range else dt.date.today())
        # Everything from the first pushed day on, past the end of the range too: the opening
        # balance is the balance of the day before.
        since = select_outputs(
            core,
            actor,
            account_ids=[account.id],
            start=selection.start,
            pending=config.include_pending,
        )
        opening = opening_balance(account, since.transactions)
        response = client.create_account(
            account_body(account, opening, first - dt.timedelta(days=1))
        )
        if response.status_code != 200:
            raise FireflyError(
                f"Firefly III refused to create an account for sophsync account {account.id} "
                f"({account_name(account)}): {_message(response)}",
                code="firefly_refused",
            )
        created = int(_body(response, "POST /v1/accounts")["data"]["id"])
        config.accounts[account.id] = created
        targets[account.id] = Target(created, account.is_liability)
        report.accounts.append(
            AccountOutcome(account.id, account.name, created, "created", _kind(account))
        )
    return targets


def _other_server(config: FireflyConfig, client: FireflyClient) -> str:
    if config.url and config.url.rstrip("/") != client.url:
        return f" (the file was written for {config.url}, not {client.url})"
    return ""


def _is_liability(item: Mapping[str, Any]) -> bool:
    attributes = item.get("attributes", {})
    return str(attributes.get("type", "")).lower() in LIABILITY_TYPES


def _opposing(client: FireflyClient, config: FireflyConfig) -> dict[str, Opposing]:
    """The payees the mapping file maps, with the kind of their Firefly account."""
    found = {}
    for payee, firefly_id in sorted(config.opposing.items()):
        item = client.account(firefly_id)
        if item is None:
            raise NotFound(
                f"Firefly III has no account #{firefly_id}, which the mapping file names for "
                f"payee {payee!r}: fix or remove that entry of opposing",
                code="firefly_account_missing",
            )
        kind = str(item.get("attributes", {}).get("type", "")).lower()
        found[payee] = Opposing(firefly_id, kind)
    return found


def _plan(
    selection: Selection,
    accounts: Sequence[OutputAccount],
    targets: Mapping[int, Target],
    opposing: Mapping[str, Opposing],
    config: FireflyConfig,
    report: PushReport,
) -> list[Planned]:
    chosen = {a.id: a for a in accounts}
    transactions = [t for t in selection.transactions if t.account_id in chosen]
    pairs = pair_transfers(transactions, chosen, config.transfer_days)
    paired: dict[int, tuple[OutputTransaction, OutputTransaction]] = {}
    for out, into in pairs:
        paired[out.id] = (out, into)
        paired[into.id] = (out, into)
    plans: list[Planned] = []
    for txn in transactions:
        pair = paired.get(txn.id)
        if pair is not None:
            out, into = pair
            known = [t.stable_id in config.pushed for t in pair]
            if all(known) or not any(known):
                if txn is out and out.account_id in targets and into.account_id in targets:
                    plans.append(
                        plan_transfer(
                            out,
                            into,
                            targets[out.account_id],
                            targets[into.account_id],
                            config.tags,
                        )
                    )
                continue
            # One side went to Firefly on its own earlier (the pair straddled a date range):
            # the other side follows on its own too, so both balances stay right.
        if txn.account_id not in targets:
            continue
        plans.append(plan_single(txn, targets[txn.account_id], opposing, config.tags))
    plans.sort(key=lambda p: (p.date, p.stable_ids))
    known_plans = [p for p in plans if all(s in config.pushed for s in p.stable_ids)]
    report.already += len(known_plans)
    return [p for p in plans if not all(s in config.pushed for s in p.stable_ids)]


def _send(
    client: FireflyClient,
    config: FireflyConfig,
    plans: Sequence[Planned],
    report: PushReport,
    dry_run: bool,
) -> None:
    for plan in plans:
        if dry_run:
            report.created += 1
            report.transfers += plan.transfer
            continue
        body = {
            "error_if_duplicate_hash": True,
            "apply_rules": config.apply_rules,
            "fire_webhooks": True,
            "transactions": [plan.split],
        }
        response = client.store_transaction(body)
        if response.status_code == 200:
            group = int(_body(response, "POST /v1/transactions")["data"]["id"])
            report.created += 1
            report.transfers += plan.transfer
        elif response.status_code == 422 and (match := DUPLICATE.search(_message(response))):
            group = int(match.group(1))
            report.already += 1
            report.duplicates += 1
        else:
            report.failures.append(f"Firefly III refused {plan.label}: {_message(response)}")
            continue
        for stable_id in plan.stable_ids:
            config.pushed[stable_id] = group


def _learn_present(
    client: FireflyClient,
    config: FireflyConfig,
    selection: Selection,
    targets: Mapping[int, Target],
) -> None:
    """Add to ``config.pushed`` the transactions of the selection that Firefly already holds
    although the file does not say so (a lost or older file). Before planning, so that a
    transfer of which Firefly holds one side on its own sends the other side on its own."""
    unknown = [
        t
        for t in selection.transactions
        if t.account_id in targets and t.stable_id not in config.pushed
    ]
    if not unknown:
        return
    present = _present(client, min(t.date for t in unknown), max(t.date for t in unknown))
    for txn in unknown:
        if txn.stable_id in present:
            config.pushed[txn.stable_id] = present[txn.stable_id]


def _present(client: FireflyClient, first: dt.date, last: dt.date) -> dict[str, int]:
    """Stable ids Firefly already holds in [first, last]: ``external_id`` and, for a transfer,
    the other side's id in ``internal_reference``."""
    present: dict[str, int] = {}
    # Firefly reads "end" as a day after "start": widen by one so that one day works too.
    for group in client.transactions(first, last + dt.timedelta(days=1)):
        for split in group.get("attributes", {}).get("transactions", []):
            for key in ("external_id", "internal_reference"):
                value = split.get(key)
                if isinstance(value, str) and value:
                    present[value] = int(group["id"])
    return present
