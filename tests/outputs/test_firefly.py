"""`sophsync push firefly` against a local Firefly III that checks every exchange with the
OpenAPI description and keeps state (``firefly_standin.py``).

The expected values come from the store (``select_outputs``), never from the push itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI

from sophsync.errors import BadInput, NotFound
from sophsync.exporters import firefly
from sophsync.exporters.source import OutputTransaction, select_outputs
from sophsync.sandbox import SandboxServer
from sophsync.store.models import AccountType
from tests.cli.test_money import cli, ok, one_line_error
from tests.outputs.conftest import Household
from tests.outputs.firefly_standin import FireflyStandIn, load_spec

TOKEN = "ff-pat-4f1c9e2b7a6d-secret"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture(scope="session")
def firefly_api() -> OpenAPI:
    """Firefly III's OpenAPI description, parsed once (it is large)."""
    return load_spec()


@pytest.fixture
def standin(firefly_api: OpenAPI) -> Iterator[FireflyStandIn]:
    with FireflyStandIn(firefly_api, TOKEN) as server:
        yield server
    assert server.violations == [], server.violations[:5]


def client(server: FireflyStandIn, **options: Any) -> firefly.FireflyClient:
    return firefly.FireflyClient(server.url, TOKEN, max_wait=0.05, **options)


def push(
    household: Household, server: FireflyStandIn, config: Path, **options: Any
) -> firefly.PushReport:
    with client(server) as api:
        return firefly.push(household.core, household.admin, api, config, **options)


def posted(household: Household, **options: Any) -> list[OutputTransaction]:
    return list(
        select_outputs(household.core, household.admin, pending=False, **options).transactions
    )


def firefly_ids(server: FireflyStandIn) -> Counter[str]:
    """How often each of our stable ids appears in Firefly (external id or the other side of
    a transfer)."""
    seen: Counter[str] = Counter()
    for split in server.state.splits():
        for key in ("external_id", "internal_reference"):
            if split.get(key):
                seen[split[key]] += 1
    return seen


def balance_over_http(server: FireflyStandIn, firefly_id: int) -> Decimal:
    response = httpx.get(
        f"{server.url}/api/v1/accounts/{firefly_id}",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.api+json"},
    )
    assert response.status_code == 200
    return Decimal(response.json()["data"]["attributes"]["current_balance"])


# --- the round trip -------------------------------------------------------------------------


def test_full_push_then_nothing(
    household: Household, standin: FireflyStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "firefly.json"
    selection = household.selection()
    expected = posted(household)
    pending = len(selection.transactions) - len(expected)

    first = push(household, standin, config)

    # Accounts: one per sophsync account, of the right Firefly kind.
    assert first.accounts_created == len(selection.accounts) == 12
    saved = json.loads(config.read_text())
    for account in selection.accounts:
        created = standin.state.accounts[saved["accounts"][str(account.id)]]
        assert created.name == firefly.account_name(account)
        if account.type is AccountType.CREDIT_CARD:
            assert (created.kind, created.direction) == ("debt", "debit")
        elif account.type is AccountType.LOAN:
            assert created.kind == "mortgage"  # both loans of the sandbox are mortgages
        else:
            assert created.kind == "asset"

    # Every posted transaction is in Firefly exactly once, pending ones are not.
    seen = firefly_ids(standin)
    assert set(seen) == {t.stable_id for t in expected}
    assert set(seen.values()) == {1}
    assert first.pending_skipped == pending > 0
    assert first.failures == []
    groups = len(standin.state.groups)
    assert first.created == groups == len(expected) - first.transfers

    # Singles: direction from the sign, amount exact and positive.
    by_id = {t.stable_id: t for t in expected}
    accounts = {int(k): v for k, v in saved["accounts"].items()}
    transfers = Counter()
    for split in standin.state.splits():
        txn = by_id[split["external_id"]]
        assert Decimal(split["amount"]) == abs(txn.amount)
        assert split["date"].startswith(txn.date.isoformat())
        other = split.get("internal_reference")
        if other is None:
            own = str(accounts[txn.account_id])
            if txn.amount_minor < 0:
                assert (split["type"], split["source_id"]) == ("withdrawal", own)
                assert split["destination_type"] == "Expense account"
                assert split["destination_name"] == txn.payee
            else:
                assert (split["type"], split["destination_id"]) == ("deposit", own)
                assert split["source_type"] == "Revenue account"
            continue
        into = by_id[other]
        assert txn.amount_minor == -into.amount_minor < 0
        assert txn.account_id != into.account_id
        assert abs((txn.date - into.date).days) <= firefly.DEFAULT_TRANSFER_DAYS
        assert split["source_id"] == str(accounts[txn.account_id])
        assert split["destination_id"] == str(accounts[into.account_id])
        transfers[(split["type"], split["source_type"], split["destination_type"])] += 1
    assert sum(transfers.values()) == first.transfers
    # Checking to savings and brokerage: Firefly transfers; paying the cards and mortgages:
    # withdrawals from the asset into the liability.
    assert transfers[("transfer", "Asset account", "Asset account")] >= 100
    assert transfers[("withdrawal", "Asset account", "Debt")] >= 40
    assert transfers[("withdrawal", "Asset account", "Mortgage")] >= 40

    # Balances: Firefly's, read over HTTP, equal the store's.
    for account in selection.accounts:
        assert balance_over_http(standin, accounts[account.id]) == account.balance, account.name

    # A second push creates nothing and sends no transaction at all.
    before = standin.state.snapshot()
    posts = Counter(standin.requests)["POST /api/v1/transactions"]
    second = push(household, standin, config)
    assert (second.created, second.accounts_created, second.transfers) == (0, 0, 0)
    assert second.already == groups
    assert standin.state.snapshot() == before
    assert Counter(standin.requests)["POST /api/v1/transactions"] == posts
    assert {a.action for a in second.accounts} == {"mapped"}


# --- the mapping file -----------------------------------------------------------------------


@SQLITE_ONLY
def test_mapping_file_is_documented_reused_and_honoured(
    household: Household, standin: FireflyStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "firefly.json"
    checking = household.selection().accounts[0]
    mine = standin.add_account("Joint checking", "asset", role="defaultAsset")
    coffee = standin.add_account("Coffee", "expense")
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "accounts": {str(checking.id): mine.id},
                "opposing": {"Starbucks": coffee.id},
            }
        )
    )
    start, end = dt.date(2026, 9, 1), dt.date(2026, 9, 30)

    report = push(household, standin, config, start=start, end=end)

    saved = json.loads(config.read_text())
    assert set(saved) == {
        "version",
        "url",
        "accounts",
        "opposing",
        "date_range",
        "options",
        "pushed",
    }
    assert set(saved["options"]) == {
        "include_pending",
        "apply_rules",
        "transfer_days",
        "check_existing",
        "tags",
    }
    assert saved["url"] == standin.url
    assert saved["date_range"] == {"from": "2026-09-01", "to": "2026-09-30"}
    assert TOKEN not in config.read_text()
    # The account mapped by hand is used, not created again; its transactions land there.
    assert saved["accounts"][str(checking.id)] == mine.id
    assert report.accounts_created == len(household.selection().accounts) - 1
    assert not any(
        a.name.startswith("Primary Checking (Sophtron Bank NoMFA")
        for a in standin.state.accounts.values()
    )
    own = [t for t in posted(household, start=start, end=end) if t.account_id == checking.id]
    touching = [
        s for s in standin.state.splits() if str(mine.id) in (s["source_id"], s["destination_id"])
    ]
    assert len(touching) == len(own) > 0
    # The payee mapped by hand is paid into that expense account, not one named after it; a
    # refund from it comes from its revenue account, found or created by name.
    by_id = {t.stable_id: t for t in posted(household, start=start, end=end)}
    starbucks = [s for s in standin.state.splits() if by_id[s["external_id"]].payee == "Starbucks"]
    paid = {(s["type"], s["destination_id"]) for s in starbucks if s["type"] == "withdrawal"}
    assert paid == {("withdrawal", str(coffee.id))}
    refunds = [s for s in starbucks if s["type"] == "deposit"]
    assert all(s["source_type"] == "Revenue account" for s in refunds)
    assert not any(
        (a.name, a.kind) == ("Starbucks", "expense") for a in standin.state.accounts.values()
    )
    stable = firefly_ids(standin)
    assert sorted(saved["pushed"]) == sorted(stable)

    # The next run takes its dates and accounts from the file and sends nothing.
    before = standin.state.snapshot()
    again = push(household, standin, config)
    assert (again.start, again.end, again.created) == (start, end, 0)
    assert standin.state.snapshot() == before


@SQLITE_ONLY
def test_lost_mapping_file_duplicates_nothing(
    household: Household, standin: FireflyStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "firefly.json"
    start, end = dt.date(2026, 8, 1), dt.date(2026, 10, 31)
    first = push(household, standin, config, start=start, end=end)
    assert first.created > 100
    before = standin.state.snapshot()

    # Without the file: the accounts are found by their marker, the transactions by the
    # external ids Firefly lists.
    config.unlink()
    listed = push(household, standin, config, start=start, end=end)
    assert listed.created == 0
    assert listed.already == first.created
    assert {a.action for a in listed.accounts} == {"found"}
    assert standin.state.snapshot() == before

    # Without the file and without the listing: Firefly's duplicate hash refuses each one.
    config.unlink()
    config.write_text(json.dumps({"options": {"check_existing": False}}))
    hashed = push(household, standin, config, start=start, end=end)
    assert hashed.created == 0
    assert hashed.duplicates == hashed.already == first.created
    assert standin.state.snapshot() == before
    # The file learnt every id again, with the group Firefly named as the duplicate.
    assert json.loads(config.read_text())["pushed"] == _pushed(standin)


def _pushed(server: FireflyStandIn) -> dict[str, int]:
    found = {}
    for group in server.state.groups.values():
        for split in group.splits:
            for key in ("external_id", "internal_reference"):
                if split.get(key):
                    found[split[key]] = group.id
    return found


@SQLITE_ONLY
def test_date_range_and_accounts(
    household: Household, standin: FireflyStandIn, tmp_path: Path
) -> None:
    selection = household.selection()
    savings, card = selection.accounts[1], selection.accounts[2]
    start, end = dt.date(2026, 6, 10), dt.date(2026, 7, 9)
    report = push(
        household,
        standin,
        tmp_path / "f.json",
        start=start,
        end=end,
        account_ids=[savings.id, card.id],
    )
    expected = posted(household, start=start, end=end, account_ids=[savings.id, card.id])
    assert set(firefly_ids(standin)) == {t.stable_id for t in expected}
    assert all(
        start.isoformat() <= s["date"][:10] <= end.isoformat() for s in standin.state.splits()
    )
    assert report.accounts_created == 2
    assert report.transfers == 0
    # The opening balance is the balance of the day before the range, so Firefly's balance
    # is the store's as of the last day pushed: today's less what came after.
    for account in (savings, card):
        later = sum(
            t.amount_minor for t in posted(household, account_ids=[account.id]) if t.date > end
        )
        ff = json.loads((tmp_path / "f.json").read_text())["accounts"][str(account.id)]
        expect = Decimal(account.balance_minor - later).scaleb(-2)
        assert balance_over_http(standin, ff) == expect

    # Then every account, with a lost file: the savings side of each checking-to-savings
    # transfer is in Firefly on its own already, so the checking side follows on its own,
    # and nothing is there twice.
    (tmp_path / "f.json").unlink()
    both = push(household, standin, tmp_path / "f.json", start=start, end=end)
    assert both.failures == []
    seen = firefly_ids(standin)
    assert set(seen) == {t.stable_id for t in posted(household, start=start, end=end)}
    assert set(seen.values()) == {1}
    mapping = json.loads((tmp_path / "f.json").read_text())["accounts"]
    checking = str(mapping[str(selection.accounts[0].id)])
    to_savings = [
        s
        for s in standin.state.splits()
        if s["source_id"] == checking and s["description"].startswith("ONLINE TRANSFER TO SAV")
    ]
    assert to_savings
    assert all("internal_reference" not in s for s in to_savings)
    assert {(s["type"], s["destination_type"]) for s in to_savings} == {
        ("withdrawal", "Expense account")
    }
    for account in selection.accounts:
        later = sum(
            t.amount_minor for t in posted(household, account_ids=[account.id]) if t.date > end
        )
        expect = Decimal(account.balance_minor - later).scaleb(-2)
        assert balance_over_http(standin, mapping[str(account.id)]) == expect, account.name
    assert both.transfers > 0  # other pairs (cards, mortgage) were not split


@SQLITE_ONLY
def test_dry_run_changes_nothing(
    household: Household, standin: FireflyStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "firefly.json"
    start, end = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
    dry = push(household, standin, config, start=start, end=end, dry_run=True)
    assert not config.exists()
    assert standin.state.accounts == {}
    assert standin.state.groups == {}
    assert {a.action for a in dry.accounts} == {"to create"}
    real = push(household, standin, config, start=start, end=end)
    assert (real.created, real.transfers) == (dry.created, dry.transfers)
    assert real.created > 0


# --- errors ---------------------------------------------------------------------------------


@SQLITE_ONLY
def test_refusals_retries_and_missing_accounts(
    household: Household, standin: FireflyStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "firefly.json"
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 15)
    # A payee mapped to an asset account: Firefly refuses such withdrawals (422), and the
    # failure names the transaction and Firefly's reason; the rest goes in.
    wallet = standin.add_account("Wallet", "asset", role="cashWalletAsset")
    config.write_text(json.dumps({"opposing": {"Starbucks": wallet.id}}))
    standin.fail_next = [500, 500]  # answered to GET /about: retried
    report = push(household, standin, config, start=start, end=end)
    assert standin.requests[:3] == ["GET /api/v1/about"] * 3
    starbucks = [t for t in posted(household, start=start, end=end) if t.payee == "Starbucks"]
    assert len(report.failures) == len(starbucks) > 0
    assert all(" cannot go from a " in f for f in report.failures)
    named = sorted(f.split()[3] for f in report.failures)
    assert named == sorted(t.stable_id for t in starbucks)
    assert report.created > 0

    # A mapped Firefly account that is gone: said clearly, nothing sent.
    saved = json.loads(config.read_text())
    saved["accounts"]["1"] = 9999
    config.write_text(json.dumps(saved))
    with pytest.raises(NotFound, match="no asset or liability account #9999"):
        push(household, standin, config, start=start, end=end)

    with (
        pytest.raises(BadInput, match="refused the token"),
        firefly.FireflyClient(standin.url, "wrong") as api,
    ):
        firefly.push(household.core, household.admin, api, config)


# --- the command line -----------------------------------------------------------------------


@SQLITE_ONLY
def test_command_line(
    household: Household,
    standin: FireflyStandIn,
    engine_sandbox: SandboxServer,
    tmp_path: Path,
) -> None:
    core = household.core
    config = tmp_path / "ff.json"
    args = ["push", "firefly", "--url", standin.url, "--config", str(config)]
    dates = ["--from", "2026-10-01", "--to", "2026-10-31"]

    result = cli(core, engine_sandbox, *args, "--token", TOKEN, *dates, "--json")
    out = ok(result)
    assert TOKEN not in out + result.stderr
    value = json.loads(out)
    expected = posted(household, start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 31))
    assert value["created"] + value["transfers"] == len(expected)
    assert value["accounts_created"] == 12
    assert value["failures"] == []
    assert TOKEN not in config.read_text()

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    again = ok(cli(core, engine_sandbox, *args, "--token-file", str(token_file)))
    assert "Created 0 transactions" in again
    assert TOKEN not in again

    bad = cli(core, engine_sandbox, *args, "--token", "not-the-token")
    one_line_error(bad, 2, "Firefly III refused the token: check --token")
    assert "not-the-token" not in bad.stderr + bad.stdout

    gone = cli(
        core,
        engine_sandbox,
        "push",
        "firefly",
        "--url",
        "http://127.0.0.1:9",
        "--token",
        TOKEN,
        "--config",
        str(config),
    )
    one_line_error(gone, 1, "Cannot reach Firefly III at http://127.0.0.1:9")

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    one_line_error(
        cli(core, engine_sandbox, *args[:4], "--config", str(broken), "--token", TOKEN),
        2,
        "broken.json is not valid JSON",
    )

    missing = cli(
        core,
        engine_sandbox,
        "push",
        "firefly",
        "--config",
        str(tmp_path / "new.json"),
        "--token",
        TOKEN,
    )
    one_line_error(missing, 2, "--url")


def test_standin_checks_the_contract(firefly_api: OpenAPI) -> None:
    """The stand-in is only worth its checks: a request outside the OpenAPI description is
    recorded and refused, and so is a wrong token."""
    with FireflyStandIn(firefly_api, TOKEN) as server:
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        split = {"type": "withdrawal", "date": "2026-01-02", "amount": "1.00", "description": "x"}
        response = httpx.post(
            f"{server.url}/api/v1/transactions", json={"transactions": [split]}, headers=headers
        )
        assert response.status_code == 400
        assert len(server.violations) == 1
        assert "date-time" in server.violations[0]
        assert server.state.groups == {}
        wrong = httpx.get(f"{server.url}/api/v1/about", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert len(server.violations) == 1
