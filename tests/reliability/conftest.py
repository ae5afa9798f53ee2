"""Fixtures and checks shared by the reliability suite.

The suite runs the sync engine against a sandbox that misbehaves (faults) or a worker that dies
(``kill -9``), then holds the store to ``/_sandbox/truth`` exactly. The engine fixtures are the
core suite's own (``make_core``, ``clock``, ``database_url``); the database is SQLite unless
``SOPHSYNC_RELIABILITY_BACKEND=postgresql`` (or the long soak, ``SOPHSYNC_SOAK=long``) asks for
PostgreSQL.

The comparison is stricter than the core suite's ``local_copy``: rows are keyed by login and
Sophtron account (never by account name, which repeats across logins), carry the transaction
date as well as the amount and pending flag, and two active rows with one provider id in one
account count as a duplicate even when they agree.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa

from sophsync.core import connect, link
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import Retryable
from sophsync.sandbox import SandboxServer
from sophsync.store.models import (
    Account,
    Connection,
    ConnectionStatus,
    ProviderAccount,
    SyncRun,
    Transaction,
    TxnStatus,
)
from tests.core.conftest import (  # noqa: F401  (fixtures, re-exported for this folder)
    ANSWERS,
    clock,
    database_url,
    institution_id,
    make_core,
    postgres_url,
)

T = TypeVar("T")

#: ``SOPHSYNC_SOAK=long`` turns the bounded runs of ``make test`` into the long soak.
LONG = os.environ.get("SOPHSYNC_SOAK", "").lower() == "long"

#: One transaction as both sides must agree on it: (provider id, cents, pending, date).
Row = tuple[str, int, bool, dt.date]
#: Every active transaction, by (Sophtron login id, Sophtron account id).
View = dict[tuple[str, str], Counter[Row]]


@pytest.fixture
def backend() -> str:
    """SQLite by default; PostgreSQL when asked (the long soak asks)."""
    default = "postgresql" if LONG else "sqlite"
    return os.environ.get("SOPHSYNC_RELIABILITY_BACKEND", default)


def retrying(action: Callable[[], T], what: str, attempts: int = 40, wait: float = 0.05) -> T:
    """Run ``action`` again while it fails with a retryable error, as a person or a job would;
    after ``attempts`` the last error is raised with what was being done."""
    for attempt in range(attempts):
        try:
            return action()
        except Retryable as error:
            last = error
            time.sleep(min(wait * (attempt + 1), 0.5))
    raise AssertionError(f"{what} still fails after {attempts} tries: {last.message}")


def connect_login(
    core: Core, actor: Actor, username: str, bank: str = "Sophtron Bank NoMFA"
) -> connect.ConnectionView:
    """Connect and link one bank login through faults, retrying each step that fails
    temporarily; the login is settled ``connected`` and every account linked when this returns.

    A dropped ``CreateUserInstitution`` may leave a login at Sophtron that the store never heard
    of; that is the protocol's nature (the answer was lost), so the orphan is ignored by the
    comparisons below, which only look at logins the store holds."""
    bank_id = retrying(lambda: institution_id(core, actor, bank), f"finding {bank}")
    view = retrying(
        lambda: connect.start_connection(core, actor, bank_id, username, "bank-password"),
        f"connecting {username}",
    )
    for _ in range(40):
        view = retrying(partial(_settle, core, view.id), f"polling {username}")
        if view.status is ConnectionStatus.CONNECTED:
            break
        if view.prompt is not None:
            answer = ANSWERS[view.prompt.kind]
            view = retrying(
                partial(connect.answer_challenge, core, actor, view.id, answer),
                f"answering {username}",
            )
            continue
        # Failed or timed out under faults: start over with the login Sophtron holds.
        view = retrying(
            partial(connect.retry_connection, core, actor, view.id), f"retrying {username}"
        )
    assert view.status is ConnectionStatus.CONNECTED, (username, view.status, view.message)
    retrying(lambda: link.link_all(core, actor, view.id, history_days=1000), f"linking {username}")
    return view


def _settle(core: Core, connection_id: int) -> connect.ConnectionView:
    return connect.wait_for_connection(core, connection_id, interval=0.01, timeout=30)


def store_view(core: Core) -> View:
    """The store's active transactions by (login, account), counting repeats."""
    with core.session() as session:
        rows = session.execute(
            sa.select(
                Connection.provider_login_id,
                ProviderAccount.provider_account_id,
                Transaction.provider_id,
                Transaction.amount_minor,
                Transaction.pending,
                Transaction.date,
            )
            .join(Account, Transaction.account_id == Account.id)
            .join(ProviderAccount, Account.provider_account_id == ProviderAccount.id)
            .join(Connection, ProviderAccount.connection_id == Connection.id)
            .where(Transaction.status == TxnStatus.ACTIVE.value)
        ).all()
    view: View = {}
    for login_id, account_id, provider_id, amount, pending, date in rows:
        view.setdefault((login_id, account_id), Counter())[
            (provider_id or "", amount, bool(pending), date)
        ] += 1
    return view


def truth_view(sandbox: SandboxServer, login_ids: set[str]) -> View:
    """The same view of ``/_sandbox/truth`` for the given logins (amounts read exactly)."""
    response = httpx.get(f"{sandbox.root}/_sandbox/truth", timeout=60)
    response.raise_for_status()
    truth = json.loads(response.text, parse_float=Decimal)
    view: View = {}
    for login in truth["Logins"]:
        if login["UserInstitutionID"] not in login_ids:
            continue
        for account in login["Accounts"]:
            rows = view.setdefault((login["UserInstitutionID"], account["AccountID"]), Counter())
            for item in account["Transactions"]:
                cents = Decimal(item["Amount"]) * 100
                assert cents == cents.to_integral_value(), item
                rows[
                    (
                        item["TransactionID"],
                        int(cents),
                        item["Status"] == "Pending",
                        dt.date.fromisoformat(item["TransactionDate"][:10]),
                    )
                ] += 1
    return view


def differences(store: View, truth: View) -> list[str]:
    """What the store gets wrong, one line per problem (empty when it equals the truth)."""
    problems: list[str] = []
    for key in sorted(set(store) | set(truth)):
        mine, theirs = store.get(key, Counter()), truth.get(key, Counter())
        by_id: dict[str, list[Row]] = {}
        for row, count in mine.items():
            by_id.setdefault(row[0], []).extend([row] * count)
        for provider_id, rows in by_id.items():
            if len(rows) > 1:
                problems.append(f"{key}: duplicate provider id {provider_id}: {rows}")
        for row in sorted(theirs - mine):
            problems.append(f"{key}: missing or wrong {row}")
        for row in sorted(mine - theirs):
            problems.append(f"{key}: extra or wrong {row}")
    return problems


def assert_store_equals_truth(core: Core, sandbox: SandboxServer) -> int:
    """Hold every login the store knows to the sandbox's truth; return the rows compared."""
    with core.session() as session:
        login_ids = {
            login_id
            for login_id in session.scalars(sa.select(Connection.provider_login_id))
            if login_id is not None
        }
    store, truth = store_view(core), truth_view(sandbox, login_ids)
    assert truth, "the sandbox shows no transactions for the store's logins"
    problems = differences(store, truth)
    shown = "\n".join(problems[:20])
    assert not problems, f"{len(problems)} difference(s) from /_sandbox/truth:\n{shown}"
    return sum(sum(rows.values()) for rows in truth.values())


def latest_runs(core: Core) -> dict[int, str]:
    """The status of each connection's latest sync run."""
    with core.session() as session:
        rows = session.execute(
            sa.select(SyncRun.connection_id, SyncRun.status).order_by(SyncRun.id)
        ).all()
    return {cid: status for cid, status in rows if cid is not None}


def sandbox_stats(sandbox: SandboxServer) -> dict[str, Any]:
    response = httpx.get(f"{sandbox.root}/_sandbox/stats", timeout=30)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats
