"""The SimpleFIN bridge: any SimpleFIN client reads the household's accounts from the local store.

SimpleFIN (https://www.simplefin.org/protocol.html) hands a client a *setup token*: the base64 of
a claim URL. The client POSTs to the claim URL once and receives an *access URL* that carries
its own credentials (``https://USER:SECRET@host/simplefin/access``); from then on it reads
``GET {access URL}/accounts`` with HTTP Basic authentication.

Here an admin creates the setup token; it is valid for :data:`TOKEN_LIFETIME` and can be claimed
once. The access it becomes belongs to the admin's family, reads only (as a member would) and
can be revoked. Only SHA-256 hashes of the token and of the access secret are stored: both are
long random strings, so a hash cannot be reversed by guessing, and a copy of the database opens
nothing. The account set is built by :func:`~sophsync.exporters.source.select_outputs` alone,
with the stable ids every output carries, so that a client that fetches twice, or fetches
overlapping date ranges, deduplicates on ids that never change.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select, update

from ..core.app import Core, owned
from ..core.families import Actor, require_admin
from ..errors import BadInput, PermissionDenied
from ..exporters.source import ID_PREFIX, OutputAccount, OutputTransaction, select_outputs
from ..settings import check_public_url
from ..store.models import Connection, ConnectionStatus, Role, SimplefinAccess

#: Where the bridge is mounted; the claim and access URLs live under it.
PREFIX = "/simplefin"
CLAIM_PATH = f"{PREFIX}/claim"
ACCESS_PATH = f"{PREFIX}/access"
#: The protocol versions ``GET /simplefin/info`` announces.
VERSIONS = ("1.0",)
#: A setup token not claimed by then is refused: a token forgotten in an email or a chat
#: should not open the household's accounts months later.
TOKEN_LIFETIME = dt.timedelta(days=7)
#: Where the command line points claim URLs when neither ``--public-url`` nor
#: ``SOPHSYNC_PUBLIC_URL`` says otherwise (``sophsync serve``'s default address).
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_LABEL = "SimpleFIN client"
MAX_LABEL = 100
#: Query timestamps are Unix seconds; beyond the year 3000 is a mistake, not a date range.
MAX_EPOCH = 32_503_680_000

_ACCOUNT_ID = re.compile(rf"^{re.escape(ID_PREFIX)}account-([1-9][0-9]{{0,9}})$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class State(StrEnum):
    #: Created, waiting for a client to claim it.
    WAITING = "waiting"
    #: Claimed: a client reads with the access URL.
    ACTIVE = "active"
    #: Not claimed in time.
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class AccessView:
    """A setup token and the access it became, as lists show them (no secret in it)."""

    id: int
    label: str
    state: State
    created_at: dt.datetime
    expires_at: dt.datetime
    claimed_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class SetupToken:
    """A new setup token: ``token`` is shown once (it holds the claim URL's secret)."""

    access: AccessView
    token: str
    claim_url: str


@dataclass(frozen=True)
class Reader:
    """An authenticated access: what it may read and where its URLs point."""

    access_id: int
    family_id: int
    base_url: str

    @property
    def actor(self) -> Actor:
        """A read-only stand-in for the family: the bridge never changes anything."""
        return Actor(user_id=0, family_id=self.family_id, role=Role.MEMBER, email="")


@dataclass(frozen=True)
class Query:
    """``GET /accounts`` parameters. ``start`` is inclusive, ``end`` exclusive (Unix seconds)."""

    start: int | None = None
    end: int | None = None
    pending: bool = False
    accounts: tuple[str, ...] = ()
    balances_only: bool = False


# --- tokens and accesses ----------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _state(row: SimplefinAccess, now: dt.datetime) -> State:
    if row.revoked_at is not None:
        return State.REVOKED
    if row.claimed_at is not None:
        return State.ACTIVE
    return State.EXPIRED if row.expires_at <= now else State.WAITING


def _view(row: SimplefinAccess, now: dt.datetime) -> AccessView:
    return AccessView(
        id=row.id,
        label=row.label,
        state=_state(row, now),
        created_at=row.created_at,
        expires_at=row.expires_at,
        claimed_at=row.claimed_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def encode_token(claim_url: str) -> str:
    """The setup token a person pastes into a client: the claim URL in base64."""
    return base64.b64encode(claim_url.encode()).decode()


def create_setup_token(core: Core, actor: Actor, base_url: str, label: str = "") -> SetupToken:
    """A setup token for the actor's family (admins), claimable once within
    :data:`TOKEN_LIFETIME`. ``base_url`` is the address clients reach this server at."""
    require_admin(actor, "create a SimpleFIN setup token")
    label = " ".join(label.split()) or DEFAULT_LABEL
    if len(label) > MAX_LABEL:
        raise BadInput(f"The label must be at most {MAX_LABEL} characters", field="label")
    base_url = check_public_url(base_url, "The public URL", "public_url")
    secret = secrets.token_urlsafe(32)
    now = core.now()
    with core.session() as session:
        row = SimplefinAccess(
            family_id=actor.family_id,
            created_by_id=actor.user_id,
            label=label,
            base_url=base_url,
            token_hash=_hash(secret),
            expires_at=now + TOKEN_LIFETIME,
            created_at=now,
        )
        session.add(row)
        session.flush()
        view = _view(row, now)
    claim_url = f"{base_url}{CLAIM_PATH}/{secret}"
    return SetupToken(view, encode_token(claim_url), claim_url)


def list_accesses(core: Core, actor: Actor) -> list[AccessView]:
    """The family's setup tokens and accesses, oldest first (every member may see them)."""
    now = core.now()
    with core.session() as session:
        rows = session.scalars(
            select(SimplefinAccess)
            .where(SimplefinAccess.family_id == actor.family_id)
            .order_by(SimplefinAccess.id)
        )
        return [_view(row, now) for row in rows]


def revoke(core: Core, actor: Actor, access_id: int) -> AccessView:
    """Revoke an access or a setup token not yet claimed (admins). Revoking twice changes
    nothing more."""
    require_admin(actor, "revoke a SimpleFIN access")
    now = core.now()
    with core.session() as session:
        row = owned(session, SimplefinAccess, access_id, actor.family_id, "SimpleFIN access")
        if row.revoked_at is None:
            row.revoked_at = now
        return _view(row, now)


class ClaimRefused(PermissionDenied):
    code = "claim_refused"


def claim(core: Core, secret: str) -> str:
    """Exchange a setup token's secret for an access URL, once.

    The token is marked claimed by one conditional UPDATE, so that two clients racing with the
    same token cannot both win. Unknown, expired, revoked and already claimed tokens get the
    same refusal: a client that receives it should tell its user that the token may have been
    seen by someone else.
    """
    refused = ClaimRefused(
        "This SimpleFIN setup token is unknown, expired, revoked or already claimed. "
        "Create a new one in sophsync (Settings, SimpleFIN bridge)."
    )
    if not secret or len(secret) > 200:
        raise refused
    now = core.now()
    username = secrets.token_hex(8)
    password = secrets.token_urlsafe(32)
    with core.session() as session:
        won = session.execute(
            update(SimplefinAccess)
            .where(
                SimplefinAccess.token_hash == _hash(secret),
                SimplefinAccess.claimed_at.is_(None),
                SimplefinAccess.revoked_at.is_(None),
                SimplefinAccess.expires_at > now,
            )
            .values(claimed_at=now, username=username, secret_hash=_hash(password))
            .execution_options(synchronize_session=False)
        )
        if getattr(won, "rowcount", 0) != 1:
            raise refused
        base_url = session.scalar(
            select(SimplefinAccess.base_url).where(SimplefinAccess.username == username)
        )
    assert base_url is not None
    return access_url(base_url, username, password)


def access_url(base_url: str, username: str, password: str) -> str:
    """``scheme://USER:SECRET@host[:port][/path]/simplefin/access``."""
    parts = urlsplit(base_url)
    netloc = f"{username}:{password}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, f"{parts.path}{ACCESS_PATH}", "", ""))


#: Compared against when the user name is unknown, so that a miss takes as long as a hit.
_NOBODY = _hash(secrets.token_urlsafe(32))


def authenticate(core: Core, username: str, password: str) -> Reader | None:
    """The access with these credentials, if it is claimed and not revoked; its last use is
    noted. The secret's hash is compared in constant time."""
    if not username or len(username) > 64 or len(password) > 200:
        return None
    with core.session() as session:
        row = session.scalar(select(SimplefinAccess).where(SimplefinAccess.username == username))
        expected = row.secret_hash if row is not None and row.secret_hash else _NOBODY
        matches = hmac.compare_digest(_hash(password), expected)
        if row is None or not matches or row.revoked_at is not None or row.claimed_at is None:
            return None
        row.last_used_at = core.now()
        return Reader(row.id, row.family_id, row.base_url)


def get_access(core: Core, actor: Actor, access_id: int) -> AccessView:
    now = core.now()
    with core.session() as session:
        row = owned(session, SimplefinAccess, access_id, actor.family_id, "SimpleFIN access")
        return _view(row, now)


# --- reading ----------------------------------------------------------------------------------


def _flag(name: str, values: list[str]) -> bool:
    value = values[-1].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadInput(f"{name} must be 1 or 0, not {values[-1][:40]!r}", field=name)


def _epoch(name: str, values: list[str]) -> int:
    value = values[-1].strip()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_EPOCH:
        raise BadInput(
            f"{name} must be a time in Unix seconds such as 1767225600, not {value[:40]!r}",
            field=name,
        )
    return int(value)


def parse_query(items: Iterable[tuple[str, str]]) -> Query:
    """The parameters of ``GET /accounts``; a bad one is :class:`BadInput` naming it. Unknown
    parameters are ignored, as the protocol lets later versions add some."""
    given: dict[str, list[str]] = {}
    for name, value in items:
        given.setdefault(name, []).append(value)
    start = _epoch("start-date", given["start-date"]) if "start-date" in given else None
    end = _epoch("end-date", given["end-date"]) if "end-date" in given else None
    if start is not None and end is not None and start > end:
        raise BadInput("start-date must not be after end-date", field="start-date")
    wanted: list[str] = []
    for value in given.get("account", []):
        if not _ACCOUNT_ID.match(value):
            raise BadInput(
                f"account must be an account id from this bridge such as "
                f"{ID_PREFIX}account-1, not {value[:60]!r}",
                field="account",
            )
        if value not in wanted:
            wanted.append(value)
    return Query(
        start=start,
        end=end,
        pending=_flag("pending", given["pending"]) if "pending" in given else False,
        accounts=tuple(wanted),
        balances_only=(
            _flag("balances-only", given["balances-only"]) if "balances-only" in given else False
        ),
    )


def epoch(day: dt.date) -> int:
    """Midnight UTC of a calendar date, in Unix seconds."""
    return calendar.timegm(day.timetuple())


def _first_day(start: int) -> dt.date:
    """The first date whose midnight is at or after ``start``."""
    day = dt.datetime.fromtimestamp(start, dt.UTC).date()
    return day if epoch(day) >= start else day + dt.timedelta(days=1)


def _last_day(end: int) -> dt.date | None:
    """The last date whose midnight is before ``end`` (``None``: none is)."""
    if end <= 0:
        return None
    return dt.datetime.fromtimestamp(end - 1, dt.UTC).date()


def _money(value: Decimal) -> str:
    return format(value, "f")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "bank"


def _org(account: OutputAccount, root: str) -> dict[str, str]:
    """The account's institution. Clients group accounts by ``domain``, so each bank gets one
    of its own, derived from its name (Sophtron gives no web address)."""
    name = account.institution or "sophsync"
    slug = _slug(name)
    return {"domain": f"{slug}.sophsync", "sfin-url": root, "name": name, "id": slug}


def _transaction(txn: OutputTransaction) -> dict[str, Any]:
    return {
        "id": txn.stable_id,
        "posted": 0 if txn.pending else epoch(txn.posted_date or txn.date),
        "amount": _money(txn.amount),
        "description": txn.description,
        "payee": txn.payee,
        "memo": txn.memo or "",
        "transacted_at": epoch(txn.date),
        "pending": txn.pending,
    }


def account_set(core: Core, reader: Reader, query: Query) -> dict[str, Any]:
    """The SimpleFIN account set for an access: its family's accounts (or those asked for)
    with their transactions in ``[start, end)``, oldest first; JSON-ready, no floats.

    A transaction's ``posted`` is midnight UTC of the day it posted (0 while pending) and
    ``transacted_at`` that of its date; the date range applies to the transaction's date,
    the one every other output filters on.
    """
    ids: list[int] = []
    for value in query.accounts:
        found = _ACCOUNT_ID.match(value)
        assert found is not None  # parse_query checked
        ids.append(int(found.group(1)))
    first = _first_day(query.start) if query.start is not None else None
    last = _last_day(query.end) if query.end is not None else None
    empty_range = last is None and query.end is not None
    if first is not None and last is not None and first > last:
        empty_range = True
    if empty_range or query.balances_only:
        # Accounts only: a range of one day (the transactions are not used).
        first = last = first or last or dt.date(1970, 1, 1)
    try:
        selection = select_outputs(
            core,
            reader.actor,
            account_ids=ids or None,
            start=first,
            end=last,
            pending=query.pending,
        )
    except BadInput:
        raise BadInput(
            "account: no such account is shared through this access", field="account"
        ) from None
    root = f"{reader.base_url}{PREFIX}"
    accounts: list[dict[str, Any]] = []
    for account in selection.accounts:
        available = account.available if account.available is not None else account.balance
        transactions = (
            []
            if query.balances_only or empty_range
            else [_transaction(txn) for txn in selection.of_account(account.id)]
        )
        accounts.append(
            {
                "org": _org(account, root),
                "id": account.stable_id,
                "name": account.name,
                "currency": account.currency,
                "balance": _money(account.balance),
                "available-balance": _money(available),
                "balance-date": int(account.balance_at.timestamp()) if account.balance_at else 0,
                "transactions": transactions,
            }
        )
    warnings = attention(
        core, reader.family_id, {account.institution for account in selection.accounts}
    )
    return {
        "errors": [message for _, message in warnings],
        # Newer clients (``version=2``) read ``errlist``; older ones ``errors``: both carry them.
        "errlist": [{"code": code, "msg": message} for code, message in warnings],
        "accounts": accounts,
    }


#: Connection states in which the data a client reads may be stale until a person acts.
_ATTENTION = {
    ConnectionStatus.REQUIRES_UPDATE.value: "con.auth",
    ConnectionStatus.NEEDS_INPUT.value: "con.auth",
    ConnectionStatus.FAILED.value: "con.error",
    ConnectionStatus.TIMED_OUT.value: "con.error",
}


def attention(core: Core, family_id: int, institutions: set[str | None]) -> list[tuple[str, str]]:
    """``(code, message)`` for each bank of the account set whose connection needs a person
    (it asks for MFA again, or its last attempt failed), so the client shows it: the balances
    it reads stop moving until someone reconnects in sophsync. The message is SimpleFIN's own
    wording, ``Connection to BANK may need attention``, which clients match on the org name."""
    with core.session() as session:
        rows = session.execute(
            select(Connection.institution_name, Connection.status)
            .where(Connection.family_id == family_id)
            .order_by(Connection.id)
        ).all()
    found: dict[str, str] = {}
    for name, status in rows:
        code = _ATTENTION.get(status)
        if code is not None and name in institutions:
            found.setdefault(name, code)
    return [(code, f"Connection to {name} may need attention") for name, code in found.items()]
