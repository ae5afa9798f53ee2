"""`push actual` against a real Actual server (``@actual-app/sync-server``, run on 127.0.0.1).

What the server holds is read back by a second client (an actualpy session with its own copy of
the budget, synced from the server as Actual's clients do) and compared with what the local
store says. One
server runs per test worker; each test pushes into its own new budget. These tests run on
SQLite only: the push reads the store through ``select_outputs``, tested on both databases.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from actual import Actual
from actual.database import Accounts, Notes, Payees, Transactions
from actual.queries import create_transaction
from actual.utils.conversions import int_to_date
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sophsync.core import sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, Conflict, Retryable
from sophsync.exporters import actual as push_actual
from sophsync.exporters.source import OutputTransaction, select_outputs
from sophsync.sandbox import SandboxServer
from sophsync.store.models import AccountType
from tests.core.conftest import FAST, Clock, advance, connect_and_link
from tests.outputs.actual_server import ActualServer, free_port, start
from tests.outputs.conftest import Household
from tests.web.conftest import AppServer

ROOT = Path(__file__).resolve().parents[2]

# The first test of a worker may install the server first (a minute or two, more on a busy
# machine: better-sqlite3 is compiled), which counts towards its time.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(scope="session")
def actual_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActualServer]:
    server = start(tmp_path_factory.mktemp("actual-server"))
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@dataclass
class Budget:
    server: ActualServer
    sync_id: str
    #: Where reads keep their copy, so that each read downloads only what changed since.
    copy: Path

    def target(self, password: str | None = None) -> push_actual.ActualTarget:
        return push_actual.ActualTarget(
            self.server.url, password or self.server.password, self.sync_id
        )


@pytest.fixture
def budget(actual_server: ActualServer, request: pytest.FixtureRequest, tmp_path: Path) -> Budget:
    sync_id = actual_server.new_budget(request.node.name[:60])
    return Budget(actual_server, sync_id, tmp_path / "actual-copy")


@dataclass(frozen=True)
class Seen:
    """The budget as a new Actual client downloads it."""

    accounts: dict[str, dict[str, Any]]
    #: Every transaction row, deleted ones too, by Actual's id.
    rows: dict[str, dict[str, Any]]

    def live(self, account: str | None = None) -> list[dict[str, Any]]:
        return [
            row
            for row in self.rows.values()
            if not row["tombstone"] and (account is None or row["acct"] == account)
        ]

    def balance(self, account: str) -> int:
        return sum(row["amount"] for row in self.live(account) if not row["is_parent"])

    def by_imported_id(self, account: str) -> dict[str, dict[str, Any]]:
        return {row["financial_id"]: row for row in self.live(account) if row["financial_id"]}


def seen(budget: Budget) -> Seen:
    server = budget.server
    with Actual(
        server.url, password=server.password, file=budget.sync_id, data_dir=budget.copy
    ) as actual:
        session = actual.session
        payees = {row.id: row.name for row in session.scalars(select(Payees))}
        notes = {row.id: row.note for row in session.scalars(select(Notes))}
        accounts = {
            row.id: {
                "name": row.name,
                "offbudget": row.offbudget,
                "tombstone": row.tombstone,
                "note": notes.get(f"account-{row.id}"),
            }
            for row in session.scalars(select(Accounts))
        }
        rows = {
            row.id: {
                "acct": row.acct,
                "amount": row.amount,
                "date": int_to_date(row.date) if row.date else None,
                "financial_id": row.financial_id,
                "payee": payees.get(row.payee_id or ""),
                "imported_description": row.imported_description,
                "notes": row.notes,
                "cleared": row.cleared,
                "pending": row.pending,
                "tombstone": row.tombstone,
                "is_parent": row.is_parent,
                "starting_balance_flag": row.starting_balance_flag,
                "category": row.category_id,
            }
            for row in session.scalars(select(Transactions))
        }
    return Seen(accounts, rows)


def assert_budget_equals_store(
    core: Core, admin: Actor, view: Seen, mapping: Path, typed: frozenset[str] = frozenset()
) -> None:
    """Every account's Actual balance is sophsync's, and Actual holds exactly the store's live
    transactions (plus one starting balance), with their stable ids, amounts, dates, payees
    and pending state. Those ``typed`` in by hand keep the person's payee and notes."""
    selection = select_outputs(core, admin)
    mapped = json.loads(mapping.read_text())
    assert mapped["budget"]
    assert "password" not in mapping.read_text().lower()
    for account in selection.accounts:
        actual_id = mapped["accounts"][str(account.id)]["actual_id"]
        assert view.accounts[actual_id]["tombstone"] == 0
        assert view.balance(actual_id) == account.balance_minor, account.name
        rows = view.by_imported_id(actual_id)
        start = rows.pop(f"{account.stable_id}-start")
        assert start["starting_balance_flag"] == 1
        expected = selection.of_account(account.id)
        assert sorted(rows) == sorted(txn.stable_id for txn in expected)
        for txn in expected:
            row = rows[txn.stable_id]
            assert (row["amount"], row["date"]) == (txn.amount_minor, txn.date), txn
            if txn.stable_id not in typed:
                assert row["payee"] == txn.payee
                assert row["notes"] == txn.description
            assert row["imported_description"] == txn.description
            assert (row["cleared"], row["pending"]) == (int(not txn.pending), int(txn.pending))
        if expected:
            assert start["date"] < min(txn.date for txn in expected)
        assert len(view.live(actual_id)) == len(expected) + 1


def test_push_creates_accounts_and_a_second_push_changes_nothing(
    household: Household, budget: Budget, tmp_path: Path
) -> None:
    core, admin = household.core, household.admin
    mapping = tmp_path / "actual.json"
    selection = household.selection()
    assert len(selection.transactions) > 1000
    assert any(txn.pending for txn in selection.transactions)
    assert any(txn.merchant for txn in selection.transactions)

    first = push_actual.push(core, admin, budget.target(), config=mapping)
    assert first.created == len(selection.accounts)
    assert first.total("added") == len(selection.transactions)
    assert (first.total("updated"), first.total("removed"), first.total("matched")) == (0, 0, 0)
    view = seen(budget)
    assert_budget_equals_store(core, admin, view, mapping)
    # Investments and loans are tracked off budget; the marker finds each account again.
    for account in selection.accounts:
        actual_id = json.loads(mapping.read_text())["accounts"][str(account.id)]["actual_id"]
        info = view.accounts[actual_id]
        off = account.type in {AccountType.INVESTMENT, AccountType.LOAN}
        assert info["offbudget"] == int(off)
        assert account.stable_id in info["note"]
    # Duplicate names get the bank and the last digits.
    names = [info["name"] for info in view.accounts.values()]
    assert len(names) == len(set(names))

    again = push_actual.push(core, admin, budget.target(), config=mapping)
    assert again.created == 0
    summary = again.summary()
    assert (summary["added"], summary["updated"], summary["removed"]) == (0, 0, 0)
    assert summary["unchanged"] == len(selection.transactions)
    assert seen(budget) == view

    # Without the mapping file, the accounts are found again by their marker.
    text = mapping.read_text()
    mapping.unlink()
    recovered = push_actual.push(core, admin, budget.target(), config=mapping)
    assert recovered.created == 0
    assert {item.how for item in recovered.accounts} == {"found"}
    assert recovered.total("added") == recovered.total("updated") == 0
    assert seen(budget) == view
    assert json.loads(mapping.read_text()) == json.loads(text)


def test_pending_transactions_that_post_are_updated_in_place(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock, budget: Budget
) -> None:
    connect_and_link(core, admin, username="pending+daily=20+accounts=3+years=0.1")
    sync.sync_family(core, admin, poller=FAST)
    mapping = core.settings.data_dir / "actual.json"
    pending = {txn.stable_id for txn in select_outputs(core, admin).transactions if txn.pending}
    assert len(pending) > 10

    push_actual.push(core, admin, budget.target())  # the default mapping file
    before = seen(budget)
    assert_budget_equals_store(core, admin, before, mapping)
    actual_ids = {row["financial_id"]: key for key, row in before.rows.items()}

    advance(engine_sandbox, clock, 10)
    sync.sync_family(core, admin, poller=FAST)
    after_sync = select_outputs(core, admin)
    now = {txn.stable_id: txn for txn in after_sync.transactions}
    posted = [stable for stable in pending if stable in now and not now[stable].pending]
    vanished = [stable for stable in pending if stable not in now]
    assert posted

    result = push_actual.push(core, admin, budget.target())
    assert result.total("added") == len(set(now) - set(actual_ids))
    assert result.total("removed") == len(vanished)
    assert result.total("updated") >= len(posted)
    after = seen(budget)
    assert_budget_equals_store(core, admin, after, mapping)
    for stable in posted:
        # The same Actual transaction, now cleared, with the posted amount and date.
        row = after.rows[actual_ids[stable]]
        assert row["financial_id"] == stable
        assert (row["cleared"], row["pending"], row["amount"]) == (1, 0, now[stable].amount_minor)
    for stable in vanished:
        assert after.rows[actual_ids[stable]]["tombstone"] == 1

    # Pushing again changes nothing.
    account = after_sync.accounts[0]
    again = push_actual.push(core, admin, budget.target())
    assert again.total("added") == again.total("updated") == 0
    assert seen(budget) == after

    # Two accounts mapped to one Actual account are refused (the file was edited by hand).
    saved = mapping.read_text()
    edited = json.loads(saved)
    actual_id = edited["accounts"][str(account.id)]["actual_id"]
    second = after_sync.accounts[1]
    edited["accounts"][str(second.id)]["actual_id"] = actual_id
    mapping.write_text(json.dumps(edited))
    with pytest.raises(BadInput, match="are both pushed to the Actual account"):
        push_actual.push(core, admin, budget.target())
    mapping.write_text(saved)
    assert seen(budget) == after

    # A mapped account deleted in Actual is a clear error, and nothing is pushed.
    server = budget.server
    with Actual(server.url, password=server.password, file=budget.sync_id) as actual:
        row = actual.session.scalars(select(Accounts).where(Accounts.id == actual_id)).one()
        row.delete()
        actual.commit()
    with pytest.raises(Conflict, match=f'remove "{account.id}" from'):
        push_actual.push(core, admin, budget.target())
    assert seen(budget).rows == after.rows


def test_a_transaction_entered_by_hand_is_matched(
    core: Core, admin: Actor, budget: Budget, tmp_path: Path
) -> None:
    connect_and_link(core, admin, username="smith+years=0.1")
    sync.sync_family(core, admin, poller=FAST)
    selection = select_outputs(core, admin)
    account = selection.accounts[0]
    rows = selection.of_account(account.id)
    cut = max(row.date for row in rows) - dt.timedelta(days=20)

    def alone(txn: OutputTransaction) -> bool:
        near = [o for o in rows if abs((o.date - txn.date).days) <= 8 and o.id != txn.id]
        return all(o.amount_minor != txn.amount_minor for o in near)

    # First push all but the last 20 days, then type one of those transactions in by hand.
    txn = next(row for row in rows if row.date > cut and alone(row))
    mapping = tmp_path / "map.json"
    early = push_actual.push(core, admin, budget.target(), config=mapping, end=cut)
    actual_id = next(item.actual_id for item in early.accounts if item.account_id == account.id)
    server = budget.server
    with Actual(server.url, password=server.password, file=budget.sync_id) as actual:
        typed = create_transaction(
            actual.session, txn.date, actual_id, "Typed by me", "mine", amount=txn.amount
        )
        typed_id = typed.id
        actual.commit()
    result = push_actual.push(core, admin, budget.target(), config=mapping)
    assert result.total("matched") == 1
    view = seen(budget)
    row = view.rows[typed_id]
    assert row["financial_id"] == txn.stable_id
    assert row["amount"] == txn.amount_minor
    assert (row["payee"], row["notes"]) == ("Typed by me", "mine")
    assert_budget_equals_store(core, admin, view, mapping, typed=frozenset({txn.stable_id}))


def test_bad_server_budget_and_password_are_clear_errors(
    core: Core, admin: Actor, budget: Budget, tmp_path: Path
) -> None:
    mapping = tmp_path / "actual.json"
    with pytest.raises(BadInput, match="refused the password: check --password") as wrong:
        push_actual.push(core, admin, budget.target(password="not it"), config=mapping)
    assert "not it" not in str(wrong.value)
    other = push_actual.ActualTarget(budget.server.url, budget.server.password, "no-such-budget")
    with pytest.raises(BadInput, match="--budget") as unknown:
        push_actual.push(core, admin, other, config=mapping)
    assert budget.sync_id in str(unknown.value)
    down = push_actual.ActualTarget(f"http://127.0.0.1:{free_port()}", "pw", budget.sync_id)
    with pytest.raises(Retryable, match="Cannot reach the Actual server"):
        push_actual.push(core, admin, down, config=mapping)
    assert not mapping.exists()

    # A mapping file of another budget, or one that is not ours, is refused before anything.
    mapping.write_text(json.dumps({"server": budget.server.url, "budget": "other", "accounts": {}}))
    with pytest.raises(BadInput, match="--config"):
        push_actual.push(core, admin, budget.target(), config=mapping)
    mapping.write_text("{not json")
    with pytest.raises(BadInput, match="not one sophsync wrote"):
        push_actual.push(core, admin, budget.target(), config=mapping)
    assert mapping.read_text() == "{not json"


def rate_limiting_proxy(upstream: str, refusals: int) -> Starlette:
    """The Actual server behind a proxy that answers its next ``refusals`` sync requests 429
    with ``Retry-After: 1``, as the server's own limiter does when a push comes too soon."""
    left = [refusals]
    hop_by_hop = {"host", "content-length", "content-encoding", "transfer-encoding", "connection"}

    async def forward(request: Request) -> Response:
        if request.url.path == "/sync/sync" and left[0] > 0:
            left[0] -= 1
            return Response(b'{"status":"error"}', 429, {"Retry-After": "1"})
        async with httpx.AsyncClient(base_url=upstream, timeout=60) as client:
            answer = await client.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=await request.body(),
                headers=[(k, v) for k, v in request.headers.items() if k not in hop_by_hop],
            )
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in hop_by_hop}
        return Response(answer.content, answer.status_code, headers)

    methods = ["GET", "POST"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def test_a_rate_limited_push_waits_and_runs_again(
    core: Core, admin: Actor, budget: Budget, tmp_path: Path
) -> None:
    connect_and_link(core, admin, username="smith+years=0.1")
    sync.sync_family(core, admin, poller=FAST)
    proxy = AppServer(rate_limiting_proxy(budget.server.url, refusals=2)).start()
    try:
        waits: list[float] = []
        target = push_actual.ActualTarget(proxy.url, budget.server.password, budget.sync_id)
        mapping = tmp_path / "actual.json"
        result = push_actual.push(core, admin, target, config=mapping, sleep=waits.append)
        # Refused twice (the download's sync, then the next attempt's): waited 1 s each time.
        assert waits == [1, 1]
        assert result.total("added") == len(select_outputs(core, admin).transactions)
        again = push_actual.push(core, admin, target, config=mapping, sleep=waits.append)
        assert again.total("added") == again.total("updated") == 0

        # Refused more often than it retries: a one-line "try later" naming the wait.
        limited = AppServer(rate_limiting_proxy(budget.server.url, refusals=9)).start()
        try:
            target = push_actual.ActualTarget(limited.url, budget.server.password, budget.sync_id)
            with pytest.raises(Retryable, match=r"HTTP 429.*try again in 1 seconds") as refused:
                push_actual.push(core, admin, target, config=mapping, sleep=waits.append)
            assert refused.value.retry_after == 1
            assert len(waits) == 2 + push_actual.RATE_LIMIT_ATTEMPTS - 1
        finally:
            limited.stop()
    finally:
        proxy.stop()


def run_cli(
    core: Core, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOPHSYNC_", "SOPHTRON_", "ACTUAL_"))
    }
    base.update(
        SOPHSYNC_DATABASE_URL=core.settings.url,
        SOPHSYNC_DATA_DIR=str(core.settings.data_dir),
        COLUMNS="200",
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "sophsync", "push", "actual", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=base,
    )


def test_command_line(core: Core, admin: Actor, budget: Budget) -> None:
    connect_and_link(core, admin, username="smith+years=0.1")
    sync.sync_family(core, admin, poller=FAST)
    server = budget.server
    where = ("--url", server.url, "--budget", budget.sync_id)

    wrong = run_cli(core, *where, "--password-stdin", stdin="wrong-secret\n")
    assert wrong.returncode == 2, wrong.stderr
    assert wrong.stderr.strip().splitlines() == [wrong.stderr.strip()]
    assert "--password" in wrong.stderr
    assert "wrong-secret" not in wrong.stderr + wrong.stdout

    unknown = run_cli(
        core, "--url", server.url, "--budget", "nope", env={"ACTUAL_PASSWORD": server.password}
    )
    assert unknown.returncode == 2, unknown.stderr
    assert "--budget" in unknown.stderr
    assert budget.sync_id in unknown.stderr
    assert "Traceback" not in unknown.stderr

    done = run_cli(core, *where, "--password-stdin", "--json", stdin=server.password + "\n")
    assert done.returncode == 0, done.stderr
    assert server.password not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    selection = select_outputs(core, admin)
    assert report["accounts_created"] == len(selection.accounts)
    assert report["added"] == len(selection.transactions)
    assert [Decimal(item["balance"]) for item in report["accounts"]] == [
        account.balance for account in selection.accounts
    ]
    config = core.settings.data_dir / "actual.json"
    assert report["config"] == str(config)
    assert_budget_equals_store(core, admin, seen(budget), config)

    again = run_cli(core, *where, env={"SOPHSYNC_ACTUAL_PASSWORD": server.password})
    assert again.returncode == 0, again.stderr
    assert "0 created" in again.stdout
    assert "0 added" in again.stdout
    assert f"{len(selection.transactions)} unchanged" in again.stdout
