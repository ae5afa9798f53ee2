"""Connecting a bank login: the MFA state machine, one Sophtron job read at a time.

``start_connection`` sends the bank login to Sophtron and records a connection. Each
``poll_connection`` reads the job once and moves the connection on: a prompt becomes a stored
challenge (status ``needs_input``), success discovers the accounts (``connected``), failure records
why (``failed``), and a job that takes too long leaves the connection ``timed_out``, resumable with
``check_again``. ``answer_challenge`` sends a person's answer; follow-up prompts arrive with the
next poll. The bank password and the answers pass through to Sophtron and are never stored.

The same machinery serves a sync whose refresh asked for MFA: the connection is then
``requires_update`` with the challenge stored, and answering it lets the sync resume.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import Connection as SQLConnection
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, joinedload

from ..errors import BadInput, Conflict, NeedsUser, NotFound
from ..sophtron import (
    AnswerRejected,
    CaptchaPrompt,
    Client,
    FailureReason,
    Institution,
    JobState,
    JobStatus,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
    job_status,
)
from ..sophtron import (
    NotFound as SophtronNotFound,
)
from ..sophtron.mfa import FAILURE_MESSAGES
from ..sophtron.models import Account as SophtronAccount
from ..store.models import (
    Account,
    AccountType,
    Connection,
    ConnectionStatus,
    ProviderAccount,
    RawPayload,
)
from .app import Core, load, owned
from .credentials import sophtron_for
from .families import Actor, require_admin

#: Seconds a job may say "Waiting" without a prompt sophsync knows before it counts as
#: unsupported MFA (right after an answer a bank may still say "Waiting" for a moment).
UNSUPPORTED_AFTER = 60.0

MESSAGES = {
    "no_accounts": "The bank login worked, but Sophtron found no accounts under it. Check that "
    "the login has accounts online, then connect again.",
    "unsupported_mfa": "The bank asked for a kind of verification sophsync cannot show. Try "
    "again later, or connect this bank another way.",
    "timed_out": "The bank is taking long to answer. Check again in a minute, or start over.",
    **{f"job_{reason.value}": message for reason, message in FAILURE_MESSAGES.items()},
}


@dataclass(frozen=True)
class ConnectionView:
    """A connection as a person should see it."""

    id: int
    institution_name: str
    status: ConnectionStatus
    prompt: Prompt | None
    message: str
    error_code: str | None
    provider_login_id: str | None
    #: The last successful sync.
    last_success_at: dt.datetime | None = None

    @property
    def waiting_for_person(self) -> bool:
        return self.status in {ConnectionStatus.NEEDS_INPUT, ConnectionStatus.REQUIRES_UPDATE} and (
            self.prompt is not None
        )

    @property
    def needs_login(self) -> bool:
        """True when the bank refused the login: new bank credentials are needed."""
        return self.error_code == f"job_{FailureReason.BAD_CREDENTIALS.value}"

    @property
    def settled(self) -> bool:
        """True when polling should stop until a person acts."""
        return self.status is not ConnectionStatus.CONNECTING


def prompt_payload(prompt: Prompt) -> dict[str, Any]:
    if isinstance(prompt, SecurityQuestionsPrompt):
        return {"kind": prompt.kind, "questions": list(prompt.questions)}
    if isinstance(prompt, TokenMethodPrompt):
        return {"kind": prompt.kind, "options": list(prompt.options)}
    if isinstance(prompt, TokenInputPrompt):
        return {"kind": prompt.kind, "label": prompt.label}
    if isinstance(prompt, PhoneConfirmationPrompt):
        return {"kind": prompt.kind, "code": prompt.code}
    return {"kind": prompt.kind, "image_base64": prompt.image_base64}


def prompt_from_payload(payload: dict[str, Any]) -> Prompt:
    kind = payload["kind"]
    if kind == "security_questions":
        return SecurityQuestionsPrompt(tuple(payload["questions"]))
    if kind == "token_method":
        return TokenMethodPrompt(tuple(payload["options"]))
    if kind == "token_input":
        return TokenInputPrompt(payload["label"])
    if kind == "phone_confirmation":
        return PhoneConfirmationPrompt(payload["code"])
    if kind == "captcha":
        return CaptchaPrompt(payload["image_base64"])
    raise ValueError(f"unknown prompt kind {kind!r}")


def _view(core: Core, connection: Connection) -> ConnectionView:
    status = ConnectionStatus(connection.status)
    prompt = None
    if connection.challenge_enc is not None:
        prompt = prompt_from_payload(core.vault.decrypt_json(connection.challenge_enc))
    if prompt is not None:
        message = "The bank is asking for more information."
        if status is ConnectionStatus.REQUIRES_UPDATE:
            message = "The bank asks for verification again before sophsync can sync: answer it."
    elif status is ConnectionStatus.CONNECTED:
        message = "Connected."
    elif status is ConnectionStatus.CONNECTING:
        message = "Working with the bank..."
    else:
        message = connection.last_error or "The connection needs attention."
    return ConnectionView(
        connection.id,
        connection.institution_name,
        status,
        prompt,
        message,
        connection.last_error_code,
        connection.provider_login_id,
        connection.last_success_at,
    )


def _connection(session: Session, actor: Actor, connection_id: int) -> Connection:
    return owned(session, Connection, connection_id, actor.family_id, "connection")


def get_connection(core: Core, actor: Actor, connection_id: int) -> ConnectionView:
    with core.session() as session:
        return _view(core, _connection(session, actor, connection_id))


def list_connections(core: Core, actor: Actor) -> list[ConnectionView]:
    with core.session() as session:
        rows = session.scalars(
            select(Connection)
            .where(Connection.family_id == actor.family_id)
            .order_by(Connection.id)
        )
        return [_view(core, row) for row in rows]


def search_institutions(core: Core, actor: Actor, query: str) -> list[Institution]:
    """Institutions whose name matches ``query`` (at least two characters)."""
    if len(query.strip()) < 2:
        raise BadInput("Type at least two characters of the institution's name", field="query")
    with sophtron_for(core, actor.family_id) as client:
        return client.get_institution_by_name(query.strip())


def _set_job(connection: Connection, job_id: str, purpose: str, core: Core) -> None:
    connection.job_id = job_id
    connection.job_purpose = purpose
    connection.job_started_at = core.now()
    connection.challenge_kind = None
    connection.challenge_enc = None
    connection.last_attempt_at = core.now()


def start_connection(
    core: Core,
    actor: Actor,
    institution_id: str,
    username: str,
    password: str,
    pin: str = "",
    *,
    institution_name: str | None = None,
) -> ConnectionView:
    """Send a bank login to Sophtron and record the connection (status ``connecting``)."""
    require_admin(actor, "connect a bank")
    if not institution_id.strip():
        raise BadInput("Choose an institution", field="institution_id")
    if not username.strip():
        raise BadInput("Enter the bank username", field="username")
    with sophtron_for(core, actor.family_id) as client:
        try:
            if institution_name is None:
                institution_name = client.get_institution_by_id(institution_id).institution_name
            tracker = client.create_user_institution(institution_id, username, password, pin)
        except SophtronNotFound:
            raise BadInput(
                f"Sophtron knows no institution {institution_id}", field="institution_id"
            ) from None
    with core.session() as session:
        connection = Connection(
            family_id=actor.family_id,
            institution_id=institution_id,
            institution_name=institution_name or institution_id,
            provider_login_id=tracker.login_id,
            status=ConnectionStatus.CONNECTING.value,
        )
        _set_job(connection, tracker.job_id, "connect", core)
        session.add(connection)
        session.flush()
        return _view(core, connection)


def discover_accounts(
    core: Core, session: Session, client: Client, connection: Connection, sync_run_id: int | None
) -> list[ProviderAccount]:
    """Read the login's accounts from Sophtron and upsert them as provider accounts."""
    assert connection.provider_login_id is not None
    found = client.get_user_institution_accounts(connection.provider_login_id)
    db = session.connection()
    archive(core, db, connection, sync_run_id, "GetUserInstitutionAccounts", found)
    return upsert_provider_accounts(core, session, connection.id, found)


class Filed(Protocol):
    """What an archived reply is filed under: a connection (a row, or what a sync read of it)."""

    @property
    def id(self) -> int: ...

    @property
    def family_id(self) -> int: ...


def archive(
    core: Core,
    db: SQLConnection,
    connection: Filed,
    sync_run_id: int | None,
    route: str,
    payload: Any,
) -> None:
    """Keep what Sophtron sent, encrypted, less its echo of MFA answers (never stored), in the
    caller's transaction ``db`` (in an ORM session, ``session.connection()``)."""
    # A Core insert: the row is written, never read back, so the unit of work has nothing to do.
    db.execute(_ARCHIVE, archived(core, connection, sync_run_id, route, payload))


def archived(
    core: Core, connection: Filed, sync_run_id: int | None, route: str, payload: Any
) -> dict[str, Any]:
    """The archive's row for a reply received now, as :func:`archive` writes it: a sync keeps
    its replies' rows and writes them together (:func:`write_archived`)."""
    # Each model as JSON straight from pydantic's serializer: a sync archives every reply, and
    # Python dictionaries dumped by ``json`` cost twice as much.
    items = payload if isinstance(payload, list) else [payload]
    dumped = [item.model_dump_json(by_alias=True, exclude=_ANSWER_ECHOES) for item in items]
    body = f"[{','.join(dumped)}]" if isinstance(payload, list) else dumped[0]
    return {
        "family_id": connection.family_id,
        "sync_run_id": sync_run_id,
        "connection_id": connection.id,
        "route": route,
        "captured_at": core.now(),
        "body_enc": core.vault.encrypt(body.encode()),
    }


def write_archived(db: SQLConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows :func:`archived` made, in one statement, in the caller's transaction."""
    if rows:
        db.execute(_ARCHIVE, list(rows))


_ARCHIVE = insert(cast(Table, RawPayload.__table__))


#: Job fields in which Sophtron repeats the answers it was sent.
_ANSWER_ECHOES = {"security_answer", "token_input", "captcha_input"}


def _minor(value: Any, currency: str) -> int | None:
    from .importer import to_minor

    return None if value is None else to_minor(value, currency)


class LinkedAccount(NamedTuple):
    """A linked local account as a sync reads it (never written through), with what Sophtron
    reports now of the provider account it is linked to."""

    id: int
    name: str
    currency: str
    invert_sign: bool
    #: The provider account's row (the account's ``provider_account_id``).
    provider_account_id: int
    sync_start_date: dt.date | None
    last_synced_at: dt.datetime | None
    #: Sophtron's id of the account (``AccountID``).
    sophtron_id: str
    balance_minor: int | None
    available_minor: int | None


def report_provider_accounts(
    core: Core, db: SQLConnection, connection_id: int, found: Sequence[SophtronAccount]
) -> list[LinkedAccount]:
    """Write the connection's provider accounts as Sophtron reports them now, in the caller's
    transaction ``db`` (in an ORM session, ``session.connection()``): known ones with one UPDATE
    for all, new ones inserted. The local accounts linked to them, in the order found.

    Plain statements: a sync reports the accounts every time, and ORM objects for them cost more
    than the statements."""
    known = {row.sophtron_id: row for row in db.execute(_KNOWN, {"connection_id": connection_id})}
    now = core.now()
    updated: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    linked: list[LinkedAccount] = []
    for item in found:
        values = _reported(item, now)
        row = known.get(item.account_id)
        if row is None:
            added.append(
                {"connection_id": connection_id, "provider_account_id": item.account_id, **values}
            )
            continue
        updated.append({"row_id": row.id, **values})
        if row.account_id is not None:
            linked.append(
                LinkedAccount(
                    row.account_id,
                    row.name,
                    row.currency,
                    row.invert_sign,
                    row.id,
                    row.sync_start_date,
                    row.last_synced_at,
                    item.account_id,
                    values["balance_minor"],
                    values["available_minor"],
                )
            )
    if updated:
        db.execute(_PROVIDER_ACCOUNT, updated)
    if added:
        db.execute(_NEW_PROVIDER_ACCOUNT, added)
    return linked


def upsert_provider_accounts(
    core: Core, session: Session, connection_id: int, found: Sequence[SophtronAccount]
) -> list[ProviderAccount]:
    """The connection's provider accounts as Sophtron reports them now (new ones added), each
    with its linked local account loaded, in the order found."""
    session.flush()  # the plain statements below see what the session holds
    report_provider_accounts(core, session.connection(), connection_id, found)
    rows = {
        row.provider_account_id: row
        for row in session.scalars(
            select(ProviderAccount)
            .where(ProviderAccount.connection_id == connection_id)
            .options(joinedload(ProviderAccount.account))
            # Objects the session held before take the values just written.
            .execution_options(populate_existing=True)
        )
    }
    return [rows[item.account_id] for item in found]


def _reported(item: SophtronAccount, now: dt.datetime) -> dict[str, Any]:
    """A provider account's columns as Sophtron reports the account now."""
    return {
        "name": item.account_name or f"Account {item.mask}",
        "mask": item.mask,
        "provider_type": item.account_type,
        "provider_subtype": item.sub_type,
        "kind": AccountType(item.kind.value).value,
        "currency": item.currency,
        "balance_minor": _minor(item.balance, item.currency),
        "available_minor": _minor(item.available_balance, item.currency),
        "due_date": item.due_date,
        "last_seen_at": now,
    }


_PROVIDER_ACCOUNTS = cast(Table, ProviderAccount.__table__)
_ACCOUNTS = cast(Table, Account.__table__)
#: A connection's provider accounts, with the local account linked to each (or nulls).
_KNOWN = (
    select(
        _PROVIDER_ACCOUNTS.c.id,
        _PROVIDER_ACCOUNTS.c.provider_account_id.label("sophtron_id"),
        _ACCOUNTS.c.id.label("account_id"),
        _ACCOUNTS.c.name,
        _ACCOUNTS.c.currency,
        _ACCOUNTS.c.invert_sign,
        _ACCOUNTS.c.sync_start_date,
        _ACCOUNTS.c.last_synced_at,
    )
    .outerjoin(_ACCOUNTS, _ACCOUNTS.c.provider_account_id == _PROVIDER_ACCOUNTS.c.id)
    .where(_PROVIDER_ACCOUNTS.c.connection_id == bindparam("connection_id"))
)
#: A provider account as reported now (the columns set are those named in the parameters).
_PROVIDER_ACCOUNT = update(_PROVIDER_ACCOUNTS).where(_PROVIDER_ACCOUNTS.c.id == bindparam("row_id"))
_NEW_PROVIDER_ACCOUNT = insert(_PROVIDER_ACCOUNTS)


def apply_job_status(
    core: Core,
    session: Session,
    client: Client,
    connection: Connection,
    status: JobStatus,
    sync_run_id: int | None = None,
) -> None:
    """Move a connection on according to what its job says."""
    if status.state is JobState.NEEDS_INPUT and status.prompt is not None:
        connection.challenge_kind = status.prompt.kind
        connection.challenge_enc = core.vault.encrypt_json(prompt_payload(status.prompt))
        connection.status = (
            ConnectionStatus.REQUIRES_UPDATE.value
            if connection.job_purpose == "sync"
            else ConnectionStatus.NEEDS_INPUT.value
        )
        return
    connection.challenge_kind = None
    connection.challenge_enc = None
    if status.state is JobState.SUCCEEDED:
        if connection.job_purpose == "connect":
            if connection.job_started_at is not None:
                # A first guess at how long the bank takes to refresh this login: the connect
                # job, from its start or from the last answer a person gave (answers restart
                # the clock).
                took = (core.now() - connection.job_started_at).total_seconds()
                connection.refresh_seconds = took if took > 0 else connection.refresh_seconds
            if not discover_accounts(core, session, client, connection, sync_run_id):
                connection.data_fresh_at = core.now()
                _fail(connection, "no_accounts")
                return
        for name, value in job_done(core).items():
            setattr(connection, name, value)
        return
    if status.state in {JobState.FAILED, JobState.TIMED_OUT}:
        reason = status.failure or FailureReason.UNKNOWN
        _fail(connection, f"job_{reason.value}")
        if connection.job_purpose == "sync":
            # A failed refresh leaves the login connected (the next sync refreshes again),
            # unless the bank no longer takes the stored login: then a person must act.
            bad_login = reason is FailureReason.BAD_CREDENTIALS
            connection.status = (
                ConnectionStatus.REQUIRES_UPDATE if bad_login else ConnectionStatus.CONNECTED
            ).value
            connection.job_id = None
            connection.job_purpose = None
        return
    started = connection.job_started_at or core.now()
    waited = (core.now() - started).total_seconds()
    if (status.job.last_status or "").strip().lower() == "waiting" and waited > UNSUPPORTED_AFTER:
        # The bank has waited a minute for an answer to something no known prompt describes.
        _fail(connection, "unsupported_mfa")
        connection.job_id = None
        return
    if waited > core.settings.connect_timeout_seconds:
        connection.status = ConnectionStatus.TIMED_OUT.value
        connection.last_error = MESSAGES["timed_out"]
        connection.last_error_code = "timed_out"
    else:
        connection.status = ConnectionStatus.CONNECTING.value


def job_done(core: Core) -> dict[str, Any]:
    """What a job that succeeded records on its connection (a connect job's, once the login's
    accounts are found): connected, its data fresh, no challenge, error or job left."""
    return {
        "status": ConnectionStatus.CONNECTED.value,
        "data_fresh_at": core.now(),
        "challenge_kind": None,
        "challenge_enc": None,
        "last_error": None,
        "last_error_code": None,
        "job_id": None,
    }


def _fail(connection: Connection, code: str) -> None:
    connection.status = ConnectionStatus.FAILED.value
    connection.last_error = MESSAGES[code]
    connection.last_error_code = code


#: States whose job is still worth reading: running, or waiting for an answer that may expire.
_POLLED = {
    ConnectionStatus.CONNECTING.value,
    ConnectionStatus.TIMED_OUT.value,
    ConnectionStatus.NEEDS_INPUT.value,
    ConnectionStatus.REQUIRES_UPDATE.value,
}


def poll_connection(core: Core, connection_id: int) -> ConnectionView:
    """Read the connection's job once and record what it says (for workers and UIs)."""
    with core.session() as session:
        connection = session.get(Connection, connection_id)
        if connection is None:
            raise NotFound(f"No connection {connection_id}")
        if connection.job_id is None or connection.status not in _POLLED:
            return _view(core, connection)
        family_id, job_id = connection.family_id, connection.job_id
    with sophtron_for(core, family_id) as client:
        job = client.get_job_information_by_id(job_id)
        with core.session() as session:
            connection = load(session, Connection, connection_id)
            if connection.job_id != job_id:  # someone started over meanwhile
                return _view(core, connection)
            archive(core, session.connection(), connection, None, "GetJobInformationByID", job)
            apply_job_status(core, session, client, connection, job_status(job))
            return _view(core, connection)


def wait_for_connection(
    core: Core,
    connection_id: int,
    *,
    timeout: float = 300.0,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ConnectionView:
    """Poll until the connection needs a person, is connected, or has failed or timed out."""
    deadline = time.monotonic() + timeout
    while True:
        view = poll_connection(core, connection_id)
        if view.settled or time.monotonic() >= deadline:
            return view
        sleep(interval)


def answer_challenge(
    core: Core, actor: Actor, connection_id: int, answer: str | Sequence[str] | bool
) -> ConnectionView:
    """Send a person's answer to the connection's pending prompt."""
    require_admin(actor, "answer the bank's questions")
    with core.session() as session:
        connection = _connection(session, actor, connection_id)
        if connection.challenge_enc is None or connection.job_id is None:
            raise Conflict(
                "The bank is not asking anything for this connection right now", code="no_challenge"
            )
        prompt = prompt_from_payload(core.vault.decrypt_json(connection.challenge_enc))
        job_id = connection.job_id
    with sophtron_for(core, actor.family_id) as client:
        try:
            client.answer_prompt(job_id, prompt, answer)
        except ValueError as error:
            raise BadInput(str(error), field="answer") from None
        except AnswerRejected:
            raise Conflict(
                "The bank was no longer waiting for this answer. Check the connection again: "
                "it may have moved on or expired.",
                code="answer_rejected",
            ) from None
    with core.session() as session:
        connection = _connection(session, actor, connection_id)
        connection.challenge_kind = None
        connection.challenge_enc = None
        connection.status = ConnectionStatus.CONNECTING.value
        connection.job_started_at = core.now()
        return _view(core, connection)


def check_again(core: Core, actor: Actor, connection_id: int) -> ConnectionView:
    """Give a timed-out job more time and read it again."""
    require_admin(actor, "check a connection")
    with core.session() as session:
        connection = _connection(session, actor, connection_id)
        if connection.status != ConnectionStatus.TIMED_OUT.value:
            return _view(core, connection)
        connection.status = ConnectionStatus.CONNECTING.value
        connection.job_started_at = core.now()
    return poll_connection(core, connection_id)


def retry_connection(core: Core, actor: Actor, connection_id: int) -> ConnectionView:
    """Start over with the login Sophtron already holds (no bank password needed)."""
    require_admin(actor, "retry a connection")
    with core.session() as session:
        connection = _connection(session, actor, connection_id)
        login_id = connection.provider_login_id
    if login_id is None:
        raise Conflict(
            "This connection has no Sophtron login to retry; connect again", code="no_login"
        )
    with sophtron_for(core, actor.family_id) as client:
        tracker = client.retry_adding_user_institution(login_id)
    with core.session() as session:
        connection = _connection(session, actor, connection_id)
        _set_job(connection, tracker.job_id, "connect", core)
        connection.status = ConnectionStatus.CONNECTING.value
        return _view(core, connection)


def update_login(
    core: Core, actor: Actor, connection_id: int, username: str, password: str, pin: str = ""
) -> ConnectionView:
    """Send new bank credentials for a connection (after a password change at the bank)."""
    require_admin(actor, "change a bank login")
    with core.session() as session:
        login_id = _connection(session, actor, connection_id).provider_login_id
    if login_id is None:
        raise Conflict("This connection has no Sophtron login; connect again", code="no_login")
    with sophtron_for(core, actor.family_id) as client:
        tracker = client.update_user_institution(login_id, username, password, pin)
    if tracker is None:
        raise NeedsUser(
            "Sophtron took the new login but started no job; retry the connection", code="no_job"
        )
    with core.session() as session:
        connection = _connection(session, actor, connection_id)
        _set_job(connection, tracker.job_id, "connect", core)
        connection.status = ConnectionStatus.CONNECTING.value
        return _view(core, connection)


def remove_connection(core: Core, actor: Actor, connection_id: int) -> None:
    """Delete the login at Sophtron and here; linked accounts keep their history, unlinked."""
    require_admin(actor, "remove a connection")
    with core.session() as session:
        login_id = _connection(session, actor, connection_id).provider_login_id
    if login_id is not None:
        with sophtron_for(core, actor.family_id) as client, suppress(SophtronNotFound):
            client.delete_user_institution(login_id)
    with core.session() as session:
        session.delete(_connection(session, actor, connection_id))
