"""Secrets stay secret: after a whole flow, no key, password or MFA answer is in the database
(outside encrypted columns) or in the logs, and Sophtron's payloads are archived encrypted."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from sophsync.core import connect, credentials, families, link, sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.sophtron import SecurityQuestionsPrompt
from sophsync.store.models import Base, ConnectionStatus, RawPayload, RunStatus
from tests.conftest import ACCESS_KEY, USER_ID
from tests.core.conftest import FAST, institution_id

ADMIN_LOGIN_PASSWORD = "family-login-pass-6620"
BANK_PASSWORD = "hunter2-bank-password"
SECURITY_ANSWER = "mfa-answer-8812"
TOKEN = "771199"
CAPTCHA = "CAPTCHA-5521"
#: What must never be readable at rest or in logs.
SECRETS = [ACCESS_KEY, ADMIN_LOGIN_PASSWORD, BANK_PASSWORD, SECURITY_ANSWER, TOKEN, CAPTCHA]
#: What a person types to answer the bank (and the bank password): never stored at all.
TYPED = [BANK_PASSWORD, SECURITY_ANSWER, TOKEN, CAPTCHA]


def secret_bytes() -> list[bytes]:
    found = [secret.encode() for secret in SECRETS]
    found.append(base64.b64decode(ACCESS_KEY))  # the HMAC key itself
    found.append(ACCESS_KEY.rstrip("=").encode())
    return found


@dataclass
class Flow:
    actor: Actor
    connection_id: int
    prompts: list[str]


def full_flow(core: Core) -> Flow:
    """Credentials, a connection with every kind of MFA, linking, and a sync."""
    actor = families.create_family(core, "Secretive", "secretive@example.com", ADMIN_LOGIN_PASSWORD)
    assert families.authenticate(core, "secretive@example.com", ADMIN_LOGIN_PASSWORD) == actor
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    view = connect.start_connection(
        core,
        actor,
        institution_id(core, actor, "Sophtron Bank"),
        "secretive-user+years=0.3",
        BANK_PASSWORD,
    )
    answers: dict[str, Any] = {
        "captcha": CAPTCHA,
        "token_method": "0",
        "token_input": TOKEN,
    }
    kinds = []
    for _ in range(10):
        view = connect.wait_for_connection(core, view.id, interval=0, timeout=10)
        if view.prompt is None:
            break
        kinds.append(view.prompt.kind)
        if isinstance(view.prompt, SecurityQuestionsPrompt):
            answer: Any = [SECURITY_ANSWER] * len(view.prompt.questions)
        else:
            answer = answers[view.prompt.kind]
        view = connect.answer_challenge(core, actor, view.id, answer)
    assert view.status is ConnectionStatus.CONNECTED, view.message
    assert kinds == ["captcha", "security_questions", "token_method", "token_input"]
    assert len(link.link_all(core, actor, view.id, history_days=60)) == 6
    run = sync.sync_connection(core, view.id, poller=FAST)
    assert run.status is RunStatus.SUCCEEDED, run
    assert run.added > 0
    return Flow(actor, view.id, kinds)


def sqlite_bytes(core: Core) -> bytes:
    database = sa.engine.make_url(core.settings.url).database
    assert database
    path = Path(database)
    blob = path.read_bytes()
    for suffix in ("-wal", "-journal", "-shm"):
        extra = Path(f"{database}{suffix}")
        if extra.exists():
            blob += extra.read_bytes()
    assert len(blob) > 100_000
    return blob


def postgres_bytes(core: Core) -> bytes:
    """Every text and bytea value of every table, read with plain SQL."""
    parts: list[bytes] = []
    with core.engine.connect() as connection:
        tables = connection.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ).scalars()
        names = sorted(tables)
        assert {table.name for table in Base.metadata.sorted_tables} <= set(names)
        for name in names:
            for record in connection.execute(sa.text(f'SELECT * FROM "{name}"')):
                for value in record:
                    if isinstance(value, str):
                        parts.append(value.encode())
                    elif isinstance(value, bytes | bytearray | memoryview):
                        parts.append(bytes(value))
    blob = b"\n".join(parts)
    assert len(blob) > 10_000
    return blob


def database_bytes(core: Core, backend: str) -> bytes:
    return sqlite_bytes(core) if backend == "sqlite" else postgres_bytes(core)


def test_no_secret_at_rest_or_in_logs(
    core: Core, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    flow = full_flow(core)

    # (a) The database holds none of them in readable form.
    blob = database_bytes(core, backend)
    assert b"secretive@example.com" in blob  # the dump does see the data
    for secret in secret_bytes():
        assert secret not in blob, secret
        assert secret.lower() not in blob.lower(), secret

    # (b) Nor do the logs, at any level.
    assert caplog.records  # the flow did log something
    text = caplog.text
    for secret in [*SECRETS, base64.b64decode(ACCESS_KEY).decode()]:
        assert secret not in text, secret
    for record in caplog.records:
        rendered = record.getMessage() + repr(record.args) + repr(record.__dict__)
        for secret in SECRETS:
            assert secret not in rendered, (record.name, secret)

    # (c) Sophtron's answers are archived, encrypted with the vault's key.
    with core.session() as session:
        archived = session.scalars(
            select(RawPayload).where(RawPayload.family_id == flow.actor.family_id)
        ).all()
    routes = {payload.route for payload in archived}
    assert "GetJobInformationByID" in routes
    assert "GetUserInstitutionAccounts" in routes
    assert len(routes) >= 3, routes
    assert all(payload.connection_id == flow.connection_id for payload in archived)
    for payload in archived:
        token = bytes(payload.body_enc)
        assert not token.lstrip().startswith((b"{", b"["))
        with pytest.raises(json.JSONDecodeError):
            json.loads(token)
        body = core.vault.decrypt_json(token)
        assert isinstance(body, dict | list)
        assert body
    access = credentials.credentials_status(core, flow.actor)
    assert access is not None
    assert ACCESS_KEY not in repr(access)


def test_archived_payloads_hold_no_bank_password_or_mfa_answer(core: Core) -> None:
    flow = full_flow(core)
    with core.session() as session:
        archived = session.scalars(
            select(RawPayload).where(RawPayload.family_id == flow.actor.family_id)
        ).all()
    assert archived
    decrypted = "\n".join(
        json.dumps(core.vault.decrypt_json(bytes(payload.body_enc))) for payload in archived
    )
    # The flow's data is there (the accounts, the job) ...
    assert "Primary Checking" in decrypted
    assert "LastStep" in decrypted
    # ... but what the person typed for the bank is not kept, not even encrypted.
    leaked = [secret for secret in TYPED if secret in decrypted]
    assert leaked == []
