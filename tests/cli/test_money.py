"""The money commands (accounts, sync, transactions, runs), run as a subprocess against the sandbox.

Data is prepared with the test's core (frozen on the sandbox's date), then the command line works
on the same database and key file with the real clock. The sandbox reads transactions for any
window, so a sync from the command line imports the same history whatever today really is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sophsync.cli.context import plain
from sophsync.core import accounts, connect, link, sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.core.importer import format_money, to_decimal
from sophsync.sandbox import SandboxServer
from sophsync.store.models import AccountType, Connection, RunStatus
from tests.core import conftest as engine
from tests.core.conftest import (
    FAST,
    Clock,
    advance,
    connect_and_link,
    connect_bank,
)

# The sync engine's fixtures (a core on SQLite and on PostgreSQL, a family, a sandbox).
postgres_url = engine.postgres_url
backend = engine.backend
database_url = engine.database_url
engine_sandbox = engine.engine_sandbox
clock = engine.clock
make_core = engine.make_core
core = engine.core
admin = engine.admin

ROOT = Path(__file__).resolve().parents[2]


def cli(core: Core, sandbox: SandboxServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``sophsync ARGS`` on the core's database, key file and sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHSYNC_", "SOPHTRON_"))}
    env.update(
        SOPHSYNC_DATABASE_URL=core.settings.url,
        SOPHSYNC_DATA_DIR=str(core.settings.data_dir),
        SOPHTRON_BASE_URL=sandbox.url,
        COLUMNS="200",
    )
    return subprocess.run(
        [sys.executable, "-m", "sophsync", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> None:
    assert result.returncode == code, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for text in expected:
        assert text in lines[0]


def flat(text: str) -> str:
    return " ".join(text.split())


#: Tests that need only one database (the commands are thin; the core is tested on both).
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


# --- accounts -------------------------------------------------------------------------------


def test_accounts_list_link_set_unlink(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    bank = connect_bank(core, admin, username="cli-accounts+accounts=4+years=0.1")
    found = link.provider_accounts(core, admin, bank.id)
    assert len(found) == 4

    listed = json.loads(ok(cli(core, engine_sandbox, "accounts", "list", "--json")))
    assert listed["accounts"] == []
    assert [item["id"] for item in listed["unlinked"]] == [item.id for item in found]
    assert {item["institution"] for item in listed["unlinked"]} == {bank.institution_name}

    # One account by hand: name, type, subtype, history.
    first = found[0]
    args = ["--name", "House loan", "--type", "loan", "--subtype", "mortgage"]
    out = ok(
        cli(
            core,
            engine_sandbox,
            "accounts",
            "link",
            str(first.id),
            *args,
            "--history-days",
            "30",
        )
    )
    (mine,) = accounts.list_accounts(core, admin)
    assert f"Linked account {mine.id} (House loan, loan/mortgage)" in flat(out)
    assert (mine.name, mine.type, mine.subtype, mine.linked) == (
        "House loan",
        AccountType.LOAN,
        "mortgage",
        True,
    )
    assert mine.balance_minor == (first.balance_minor or 0)

    # Unlink it, then link the second bank account to it, keeping its history.
    assert "Unlinked account" in ok(cli(core, engine_sandbox, "accounts", "unlink", str(mine.id)))
    assert not accounts.get_account(core, admin, mine.id).linked
    second = found[1]
    ok(cli(core, engine_sandbox, "accounts", "link", str(second.id), "--to", str(mine.id)))
    assert link.provider_accounts(core, admin, bank.id)[1].linked_account_id == mine.id
    mine = accounts.get_account(core, admin, mine.id)

    # The table: the linked account's exact balance, the other three marked as not linked.
    table = flat(ok(cli(core, engine_sandbox, "accounts", "list")))
    assert format_money(mine.balance_minor, mine.currency) in table
    assert "not linked" in table.split("House loan", 1)[1]
    for item in (found[0], *found[2:]):
        assert item.name in table
        assert format_money(item.balance_minor, item.currency) in table

    # --all links the rest to new accounts of the guessed type.
    out = ok(cli(core, engine_sandbox, "accounts", "link", "--all", "--connection", str(bank.id)))
    assert flat(out).count("Linked account") == 3  # the first one is unlinked again
    after = link.provider_accounts(core, admin, bank.id)
    assert all(item.linked_account_id is not None for item in after)
    for item in (after[0], *after[2:]):
        assert item.linked_account_id is not None
        assert accounts.get_account(core, admin, item.linked_account_id).type is item.kind

    # set: the sign override flips the balance; name, type, subtype and start change.
    target = accounts.list_accounts(core, admin)[-1]
    assert target.balance_minor != 0
    out = ok(cli(core, engine_sandbox, "accounts", "set", str(target.id), "--invert-sign"))
    flipped = accounts.get_account(core, admin, target.id)
    assert flipped.invert_sign
    assert flipped.balance_minor == -target.balance_minor
    assert "sign inverted" in out
    start = core.today().replace(day=1).isoformat()
    shown = json.loads(
        ok(
            cli(
                core,
                engine_sandbox,
                "accounts",
                "set",
                str(target.id),
                "--name",
                "Rainy day",
                "--type",
                "credit card",
                "--subtype",
                "store card",
                "--start",
                start,
                "--no-invert-sign",
                "--json",
            )
        )
    )
    changed = accounts.get_account(core, admin, target.id)
    assert (changed.name, changed.type, changed.subtype, changed.invert_sign) == (
        "Rainy day",
        AccountType.CREDIT_CARD,
        "store card",
        False,
    )
    assert changed.balance_minor == target.balance_minor
    assert changed.sync_start_date is not None
    assert changed.sync_start_date.isoformat() == start
    assert (shown["name"], shown["type"], shown["balance_minor"]) == (
        "Rainy day",
        "credit_card",
        target.balance_minor,
    )


# --- sync -----------------------------------------------------------------------------------


def test_sync_prints_a_summary_and_json_matches_the_store(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    first = connect_and_link(core, admin, username="cli-sync-a+accounts=2+years=0.2")
    second = connect_and_link(core, admin, username="cli-sync-b+accounts=1+years=0.2")

    out = flat(ok(cli(core, engine_sandbox, "sync")))
    runs = sync.sync_runs(core, admin)
    assert len(runs) == 2
    assert {run.connection_id for run in runs} == {first.id, second.id}
    assert all(run.status is RunStatus.SUCCEEDED for run in runs)
    assert all(run.added > 0 for run in runs)
    assert first.institution_name in out
    assert out.count("succeeded") == 2
    for run in runs:
        assert f"{run.added}" in out
    stored = accounts.list_transactions(core, admin, limit=1000)
    assert len(stored) == sum(run.added for run in runs)

    result = cli(core, engine_sandbox, "sync", "--connection", str(second.id), "--json")
    records = json.loads(ok(result))
    (latest,) = sync.sync_runs(core, admin, limit=1)
    assert records == [json.loads(json.dumps(plain(latest), default=str))]
    assert records[0]["connection_id"] == second.id
    assert records[0]["status"] == "succeeded"
    assert records[0]["added"] == 0  # nothing new since the first sync
    assert accounts.list_transactions(core, admin, limit=1000) == stored


@SQLITE_ONLY
def test_sync_backfill_reads_older_history(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_bank(core, admin, username="cli-backfill+accounts=1+years=0.5")
    link.link_all(core, admin, view.id, history_days=20)
    ok(cli(core, engine_sandbox, "sync"))
    before = len(accounts.list_transactions(core, admin, limit=1000))
    (account,) = accounts.list_accounts(core, admin)
    assert account.sync_start_date is not None
    backfill = (account.sync_start_date - dt.timedelta(days=90)).isoformat()
    ok(cli(core, engine_sandbox, "sync", "--backfill-from", backfill))
    after = len(accounts.list_transactions(core, admin, limit=1000))
    assert after > before
    moved = accounts.get_account(core, admin, account.id).sync_start_date
    assert moved is not None
    assert moved.isoformat() == backfill


def _needs_fresh_refresh(core: Core, connection_id: int) -> None:
    """Make the next sync ask Sophtron to refresh, whatever the real clock says."""
    with core.session() as session:
        session.execute(
            sa.update(Connection).where(Connection.id == connection_id).values(data_fresh_at=None)
        )


@SQLITE_ONLY
def test_sync_that_hits_mfa_exits_3(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock
) -> None:
    calm = connect_and_link(core, admin, username="cli-calm+accounts=1+years=0.1")
    asked = connect_and_link(
        core,
        admin,
        name="Sophtron Bank SecurityQuestion",
        username="cli-asked+mfa-again+accounts=1+years=0.1",
    )
    assert sync.sync_connection(core, asked.id, poller=FAST).status is RunStatus.SUCCEEDED
    advance(engine_sandbox, clock, 2)
    _needs_fresh_refresh(core, asked.id)

    result = cli(core, engine_sandbox, "sync")
    assert result.returncode == 3, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    out = flat(result.stdout)
    assert "needs you" in out
    assert "succeeded" in out  # the other bank synced all the same
    runs = {run.connection_id: run for run in sync.sync_runs(core, admin, limit=2)}
    assert runs[asked.id].status is RunStatus.NEEDS_INPUT
    assert runs[calm.id].status is RunStatus.SUCCEEDED
    assert connect.get_connection(core, admin, asked.id).waiting_for_person

    # Syncing again before anyone answers: still needs you, with the run records as JSON.
    result = cli(core, engine_sandbox, "sync", "--connection", str(asked.id), "--json")
    assert result.returncode == 3, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["error_code"] == "requires_update"


@SQLITE_ONLY
def test_sync_without_connections_needs_you(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    one_line_error(cli(core, engine_sandbox, "sync"), 3, "Connect a bank first")


# --- transactions and runs ------------------------------------------------------------------


def test_transactions_list_filters_and_pages_like_the_core(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_and_link(core, admin, username="cli-txns+accounts=2+years=0.3")
    assert sync.sync_connection(core, view.id, poller=FAST).status is RunStatus.SUCCEEDED
    everything = accounts.list_transactions(core, admin, limit=1000)
    assert len(everything) > 20
    account_id = everything[-1].account_id
    word = everything[len(everything) // 2].description.split()[0]
    dates = sorted({row.date for row in everything})
    start, end = dates[len(dates) // 4], dates[3 * len(dates) // 4]

    def listed(*args: str) -> dict[str, Any]:
        return dict(json.loads(ok(cli(core, engine_sandbox, "transactions", "list", *args))))

    cases: list[tuple[list[str], dict[str, Any]]] = [
        (
            ["--account", str(account_id), "--from", str(start), "--to", str(end), "--posted"],
            {"account_id": account_id, "start": start, "end": end, "pending": False},
        ),
        (["--search", word.lower()], {"search": word.lower()}),
        (
            ["--min-amount", "10", "--max-amount", "200.50"],
            {"min_amount": Decimal("10"), "max_amount": Decimal("200.50")},
        ),
    ]
    only_pending: tuple[list[str], dict[str, Any]] = (["--pending"], {"pending": True})
    cases.append(only_pending)  # the sandbox's history may hold none: equal all the same
    for args, filters in cases:
        expected = accounts.list_transactions(core, admin, limit=1000, **filters)
        if (args, filters) != only_pending:
            assert 0 < len(expected) < len(everything), args
        got = listed(*args, "--limit", "1000", "--json")
        assert [row["id"] for row in got["transactions"]] == [row.id for row in expected], args
        assert [row["amount"] for row in got["transactions"]] == [
            str(to_decimal(row.amount_minor, row.currency)) for row in expected
        ]
        assert got["next_cursor"] is None

    # Paging with the cursor walks the same list, page by page.
    size = -(-len(everything) // 3)
    seen: list[int] = []
    cursor: list[str] = []
    for _ in range(3):
        page = listed("--limit", str(size), "--json", *cursor)
        seen.extend(row["id"] for row in page["transactions"])
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["transactions"][-1]["id"]
        cursor = ["--cursor", str(page["next_cursor"])]
    assert page["next_cursor"] is None
    assert seen == [row.id for row in everything]

    # The table shows exact amounts and the next cursor.
    out = flat(ok(cli(core, engine_sandbox, "transactions", "list", "--limit", "5")))
    for row in everything[:5]:
        assert format_money(row.amount_minor, row.currency) in out
    assert f"--cursor {everything[4].id}" in out


@SQLITE_ONLY
def test_runs_list(core: Core, admin: Actor, engine_sandbox: SandboxServer) -> None:
    first = connect_and_link(core, admin, username="cli-runs-a+accounts=1+years=0.1")
    second = connect_and_link(core, admin, username="cli-runs-b+accounts=1+years=0.1")
    for view in (first, second, first):
        sync.sync_connection(core, view.id, poller=FAST)
    runs = sync.sync_runs(core, admin)

    got = json.loads(ok(cli(core, engine_sandbox, "runs", "list", "--json")))
    assert got == json.loads(json.dumps(plain(runs), default=str))
    assert [run["status"] for run in got] == ["succeeded"] * 3
    args = ["--connection", str(second.id), "--limit", "1", "--json"]
    only = json.loads(ok(cli(core, engine_sandbox, "runs", "list", *args)))
    assert [run["id"] for run in only] == [runs[1].id]
    assert runs[1].connection_id == second.id
    out = flat(ok(cli(core, engine_sandbox, "runs", "list")))
    assert second.institution_name in out
    assert out.count("succeeded") == 3


# --- bad input ------------------------------------------------------------------------------


@SQLITE_ONLY
def test_bad_input_is_one_line_and_never_a_traceback(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect_and_link(core, admin, username="cli-bad+accounts=1+years=0.1")
    linked = link.provider_accounts(core, admin, view.id)[0]
    account_id = str(linked.linked_account_id)
    before = accounts.get_account(core, admin, int(account_id))
    cases: list[tuple[list[str], int, tuple[str, ...]]] = [
        (["accounts", "set", "9999", "--name", "x"], 1, ("No account 9999",)),
        (["transactions", "list", "--from", "2026-13-01"], 2, ("--from", "2026-13-01")),
        (["sync", "--backfill-from", "21/11/2026"], 2, ("--backfill-from",)),
        (["transactions", "list", "--min-amount", "ten"], 2, ("--min-amount", "'ten'")),
        (["accounts", "set", account_id, "--type", "savings"], 2, ("--type", "depository")),
        (["accounts", "link", str(linked.id)], 1, ("linked already",)),
        (["accounts", "link"], 2, ("--all",)),
        (["runs", "list", "--connection", "9999"], 1, ("No connection 9999",)),
    ]
    for args, code, expected in cases:
        one_line_error(cli(core, engine_sandbox, *args), code, *expected)
    assert sync.sync_runs(core, admin) == []
    assert accounts.get_account(core, admin, int(account_id)) == before
