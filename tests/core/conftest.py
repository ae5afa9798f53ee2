"""Fixtures for the sync engine: a Core on SQLite or PostgreSQL, against a real sandbox.

Every core test runs on both databases (the ``backend`` parameter). PostgreSQL is the one on
127.0.0.1:5432 (``SOPHSYNC_TEST_POSTGRES`` overrides the server URL); each test session creates
its own database and drops it at the end. Without a reachable server the PostgreSQL tests fail,
they are never skipped.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from sophsync.core import connect, credentials, families, link, sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store import create_engine, upgrade
from sophsync.store.models import Account, Base, Transaction, TxnStatus
from tests.conftest import ACCESS_KEY, TODAY, USER_ID

POSTGRES = os.environ.get("SOPHSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_PASSWORD = "correct horse battery"
#: Answers that pass at every test bank.
ANSWERS: dict[str, Any] = {
    "captcha": "K7QX2",
    "security_questions": ["blue", "rex", "ann"],
    "token_method": "0",
    "token_input": "123456",
    "phone_confirmation": True,
}


@dataclass
class Clock:
    """The core's clock, kept on the sandbox's world date."""

    now: dt.datetime = field(
        default_factory=lambda: dt.datetime.combine(TODAY, dt.time(12), dt.UTC)
    )

    #: When set (``follow_real_time``), the clock also moves with real time from then on.
    ticking_since: float | None = None

    def __call__(self) -> dt.datetime:
        if self.ticking_since is None:
            return self.now
        return self.now + dt.timedelta(seconds=time.monotonic() - self.ticking_since)

    def follow_real_time(self) -> None:
        self.ticking_since = time.monotonic()

    def advance(self, days: float = 0, seconds: float = 0) -> None:
        self.now += dt.timedelta(days=days, seconds=seconds)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"sophsync_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {POSTGRES} is needed for these tests: {error}")
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'sophsync.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield emptied(url)


def emptied(url: str) -> str:
    """The PostgreSQL database at ``url``, every sophsync table emptied and its ids reset."""
    engine = create_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine_sandbox(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    """A dedicated sandbox per test (jobs take no time)."""
    return make_sandbox()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_core(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[Callable[..., Core]]:
    cores: list[Core] = []

    def build(sandbox: SandboxServer, **settings: Any) -> Core:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "sophtron_base_url": sandbox.url,
        }
        values.update(settings)
        core = Core.open(
            Settings(**values),
            migrate=True,
            clock=clock,
            poll_interval=0.001,
            max_poll_interval=0.005,
        )
        cores.append(core)
        return core

    yield build
    for core in cores:
        core.close()


@pytest.fixture
def core(make_core: Callable[..., Core], engine_sandbox: SandboxServer) -> Core:
    return make_core(engine_sandbox)


@pytest.fixture
def admin(core: Core) -> Actor:
    """The first admin of a family whose Sophtron credentials are saved."""
    actor = families.create_family(core, "The Smiths", "admin@example.com", ADMIN_PASSWORD)
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    return actor


@pytest.fixture
def member(core: Core, admin: Actor) -> Actor:
    return families.add_user(
        core, admin, "kid@example.com", "another password", families.Role.MEMBER
    )


FAST = sync.Poller(interval=0.0, maximum=0.0, sleep=lambda seconds: None)


def institution_id(core: Core, actor: Actor, name: str) -> str:
    found = connect.search_institutions(core, actor, name)
    return next(item.institution_id for item in found if item.institution_name == name)


def connect_bank(
    core: Core,
    actor: Actor,
    name: str = "Sophtron Bank NoMFA",
    username: str = "smith",
    password: str = "bank-password",
    answers: dict[str, Any] | None = None,
) -> connect.ConnectionView:
    """Connect a bank, answering every prompt, and return the settled connection."""
    given = {**ANSWERS, **(answers or {})}
    view = connect.start_connection(
        core, actor, institution_id(core, actor, name), username, password
    )
    while True:
        view = connect.wait_for_connection(core, view.id, interval=0, timeout=10)
        if view.prompt is None:
            return view
        answer = given[view.prompt.kind]
        if view.prompt.kind == "security_questions":
            answer = list(answer)[: len(view.prompt.questions)]  # type: ignore[union-attr]
        view = connect.answer_challenge(core, actor, view.id, answer)


def connect_and_link(core: Core, actor: Actor, **kwargs: Any) -> connect.ConnectionView:
    view = connect_bank(core, actor, **kwargs)
    link.link_all(core, actor, view.id, history_days=1000)
    return view


Copy = dict[str, set[tuple[str | None, int, bool]]]


def local_copy(core: Core) -> Copy:
    """Every active transaction of the store by account name: (provider id, cents, pending)."""
    with core.session() as session:
        rows = session.execute(
            sa.select(
                Account.name, Transaction.provider_id, Transaction.amount_minor, Transaction.pending
            )
            .join(Account, Transaction.account_id == Account.id)
            .where(Transaction.status == TxnStatus.ACTIVE.value)
        ).all()
    copy: Copy = {}
    for name, provider_id, amount, pending in rows:
        copy.setdefault(name, set()).add((provider_id, amount, pending))
    assert sum(map(len, copy.values())) == len(rows), "the store holds duplicate transactions"
    return copy


def sandbox_copy(sandbox: SandboxServer) -> Copy:
    """The same view of the sandbox's ``/_sandbox/truth``."""
    return {
        account["AccountName"]: {
            (t["TransactionID"], round(t["Amount"] * 100), t["Status"] == "Pending")
            for t in account["Transactions"]
        }
        for login in truth(sandbox)["Logins"]
        for account in login["Accounts"]
    }


def truth(sandbox: SandboxServer) -> dict[str, Any]:
    return httpx.get(f"{sandbox.root}/_sandbox/truth", timeout=30).json()


def advance(sandbox: SandboxServer, clock: Clock, days: int) -> None:
    httpx.post(f"{sandbox.root}/_sandbox/advance", json={"days": days}, timeout=30)
    clock.advance(days=days)


class Refusal:
    """The database refusing a sync's last writes, as a server out of connections would: from
    the first UPDATE of ``tables[0]`` until the block ends, every UPDATE of ``tables`` fails.
    ``refused`` counts the statements refused."""

    def __init__(self, core: Core, *tables: str) -> None:
        self.engine = core.engine
        self.prefixes = tuple(f"UPDATE {table} " for table in tables)
        self.on = False
        self.refused = 0

    def __enter__(self) -> Refusal:
        sa.event.listen(self.engine, "before_cursor_execute", self._check)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._check)

    def _check(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.on = self.on or statement.startswith(self.prefixes[0])
        if self.on and statement.startswith(self.prefixes):
            self.refused += 1
            raise sa.exc.OperationalError(statement, None, Exception("too many clients already"))
