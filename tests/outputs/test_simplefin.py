"""The SimpleFIN bridge over real HTTP: the protocol end to end against the web app served by
uvicorn, the command line as a subprocess, the settings page, and simplefin4py (the client
library Home Assistant uses) claiming a token and reading through the bridge.

Expected values are read from the store's own tables here (not through the bridge's reader) and
amounts are compared as exact decimals.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gc
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from sophsync.bridges import simplefin
from sophsync.cli import main
from sophsync.core import credentials, families, sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, PermissionDenied
from sophsync.store.models import (
    Account,
    Base,
    Connection,
    ConnectionStatus,
    SimplefinAccess,
    Transaction,
    TxnStatus,
)
from tests.conftest import ACCESS_KEY, USER_ID
from tests.core.conftest import ADMIN_PASSWORD, FAST, Clock, connect_and_link
from tests.outputs.conftest import Household
from tests.web.conftest import WebServer
from tests.web.test_pages import Browser

ROOT = Path(__file__).resolve().parents[2]
MEMBER_EMAIL = "kid@example.com"
MEMBER_PASSWORD = "another password"
USD = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture
def server(household: Household) -> Iterator[WebServer]:
    web = WebServer(household.core).start()
    yield web
    web.stop()


# --- what the store holds, read independently ------------------------------------------------


@dataclass(frozen=True)
class Stored:
    id: int
    date: dt.date
    posted_date: dt.date | None
    pending: bool
    amount_minor: int
    description: str
    merchant: str | None
    memo: str | None


def midnight(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(0), dt.UTC).timestamp())


def stored_accounts(core: Core, family_id: int) -> list[Account]:
    with core.session() as session:
        rows = session.scalars(
            sa.select(Account).where(Account.family_id == family_id).order_by(Account.id)
        ).all()
        session.expunge_all()
        return list(rows)


def stored_transactions(core: Core, account_id: int) -> list[Stored]:
    with core.session() as session:
        rows = session.scalars(
            sa.select(Transaction)
            .where(
                Transaction.account_id == account_id,
                Transaction.status == TxnStatus.ACTIVE.value,
                Transaction.deleted.is_(False),
            )
            .order_by(Transaction.date, Transaction.id)
        ).all()
        return [
            Stored(
                t.id,
                t.date,
                t.posted_date,
                t.pending,
                t.amount_minor,
                t.description,
                t.merchant,
                t.memo,
            )
            for t in rows
        ]


def cents(text: str) -> int:
    """An amount string as integer cents; it must be exact (two decimals, USD)."""
    assert USD.match(text), text
    value = Decimal(text) * 100
    assert value == value.to_integral_value(), text
    return int(value)


def check_account_set(
    core: Core,
    family_id: int,
    body: dict[str, Any],
    *,
    pending: bool = False,
    start: int | None = None,
    end: int | None = None,
    only: list[int] | None = None,
    balances_only: bool = False,
) -> int:
    """``body`` is exactly what the store holds for these parameters; the number of
    transactions it carries."""
    assert body["errors"] == []
    assert body["errlist"] == []
    rows = [a for a in stored_accounts(core, family_id) if only is None or a.id in only]
    assert [a["id"] for a in body["accounts"]] == [f"sophsync-account-{a.id}" for a in rows]
    count = 0
    for row, account in zip(rows, body["accounts"], strict=True):
        assert account["name"] == row.name
        assert account["currency"] == row.currency == "USD"
        assert cents(account["balance"]) == row.balance_minor
        available = row.available_minor if row.available_minor is not None else row.balance_minor
        assert cents(account["available-balance"]) == available
        assert row.balance_at is not None
        assert account["balance-date"] == int(row.balance_at.timestamp())
        assert set(account["org"]) >= {"domain", "sfin-url", "name"}
        assert account["org"]["sfin-url"].endswith("/simplefin")
        expected = [
            t
            for t in stored_transactions(core, row.id)
            if (pending or not t.pending)
            and (start is None or midnight(t.date) >= start)
            and (end is None or midnight(t.date) < end)
        ]
        if balances_only:
            expected = []
        got = account["transactions"]
        assert [t["id"] for t in got] == [f"sophsync-{t.id}" for t in expected]
        for sent, txn in zip(got, expected, strict=True):
            assert cents(sent["amount"]) == txn.amount_minor
            assert sent["pending"] is txn.pending
            assert sent["transacted_at"] == midnight(txn.date)
            posted = 0 if txn.pending else midnight(txn.posted_date or txn.date)
            assert sent["posted"] == posted
            assert sent["description"] == txn.description
            assert sent["payee"] == ((txn.merchant or "").strip() or txn.description.strip())
            assert sent["memo"] == (txn.memo or "")
        count += len(got)
    return count


def everything_but_accesses(core: Core) -> dict[str, list[str]]:
    with core.session() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(sa.select(table)))
            for table in Base.metadata.sorted_tables
            if table.name != SimplefinAccess.__tablename__
        }


# --- the protocol ------------------------------------------------------------------------------


def claim_url_of(token: str) -> str:
    return base64.b64decode(token, validate=True).decode()


def claim(token: str) -> httpx.Response:
    return httpx.post(claim_url_of(token), timeout=30)


def credentials_of(access_url: str) -> tuple[str, tuple[str, str]]:
    """The access root without credentials, and the credentials."""
    parts = urlsplit(access_url)
    assert parts.username
    assert parts.password
    root = f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}"
    return root, (parts.username, parts.password)


def fetch(access_url: str, params: Any = None, **kwargs: Any) -> httpx.Response:
    root, auth = credentials_of(access_url)
    response = httpx.get(f"{root}/accounts", params=params, auth=auth, timeout=60, **kwargs)
    assert response.status_code < 500, response.text
    return response


def refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["errors"], list)
    assert len(body["errors"]) == 1
    for word in words:
        assert word in body["errors"][0], body


def test_claim_fetch_filter_and_revoke_over_http(household: Household, server: WebServer) -> None:
    core, admin = household.core, household.admin
    assert httpx.get(f"{server.url}/simplefin/info").json() == {"versions": ["1.0"]}

    made = simplefin.create_setup_token(core, admin, server.url, "Actual Budget")
    assert claim_url_of(made.token).startswith(f"{server.url}/simplefin/claim/")
    with core.session() as session:
        row = session.get(SimplefinAccess, made.access.id)
        assert row is not None
        stored = {str(value) for value in row.__dict__.values()}
    secret = claim_url_of(made.token).rsplit("/", 1)[1]
    assert made.token not in stored
    assert secret not in stored
    (waiting,) = simplefin.list_accesses(core, admin)
    assert (waiting.label, waiting.state) == ("Actual Budget", simplefin.State.WAITING)

    claimed = claim(made.token)
    assert claimed.status_code == 200, claimed.text
    assert claimed.headers["content-type"].startswith("text/plain")
    access = claimed.text
    parts = urlsplit(access)
    assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", server.port)
    assert parts.path == "/simplefin/access"
    assert parts.username
    assert parts.password
    assert len(parts.password) >= 40
    with core.session() as session:
        row = session.get(SimplefinAccess, made.access.id)
        assert row is not None
        assert parts.password not in {str(value) for value in row.__dict__.values()}
    # A claimed token cannot be claimed again, by anyone.
    refused(claim(made.token), 403, "already claimed")
    refused(httpx.post(f"{server.url}/simplefin/claim/not-a-token"), 403)
    (active,) = simplefin.list_accesses(core, admin)
    assert active.state is simplefin.State.ACTIVE
    assert active.claimed_at == core.now()
    assert active.last_used_at is None

    # The whole account set: every account, posted transactions only, as the store holds it.
    before = everything_but_accesses(core)
    first = fetch(access)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    posted = check_account_set(core, admin.family_id, first.json())
    assert posted > 1000
    # The credentials in the URL itself, as most clients send them.
    assert httpx.get(f"{access}/accounts", timeout=60).content == first.content
    # Reads are pure: a second fetch is identical and nothing in the store changed.
    assert fetch(access).content == first.content
    assert everything_but_accesses(core) == before
    assert simplefin.list_accesses(core, admin)[0].last_used_at == core.now()

    # pending=1 adds the pending transactions (posted 0).
    with_pending = fetch(access, {"pending": "1"}).json()
    assert check_account_set(core, admin.family_id, with_pending, pending=True) > posted
    pending_ones = [
        t for a in with_pending["accounts"] for t in a["transactions"] if t["pending"] is True
    ]
    assert pending_ones
    assert all(t["posted"] == 0 for t in pending_ones)
    assert fetch(access, {"pending": "0"}).content == first.content

    # start-date inclusive, end-date exclusive, in Unix seconds.
    days = sorted({t["transacted_at"] for a in first.json()["accounts"] for t in a["transactions"]})
    start, end = days[len(days) // 2], days[len(days) // 2 + 10]
    ranged = fetch(access, {"start-date": str(start), "end-date": str(end)}).json()
    count = check_account_set(core, admin.family_id, ranged, start=start, end=end)
    assert 0 < count < posted
    assert {t["transacted_at"] for a in ranged["accounts"] for t in a["transactions"]} <= set(
        days[len(days) // 2 : len(days) // 2 + 10]
    )
    # A start within a day begins with the next one.
    shifted = fetch(access, {"start-date": str(start + 1), "end-date": str(end)}).json()
    check_account_set(core, admin.family_id, shifted, start=start + 1, end=end)
    only_start = fetch(access, {"start-date": str(start), "pending": "1"}).json()
    check_account_set(core, admin.family_id, only_start, start=start, pending=True)
    empty = fetch(access, {"start-date": str(start + 3600), "end-date": str(start + 7200)})
    check_account_set(core, admin.family_id, empty.json(), start=start + 3600, end=start + 7200)

    # account= (repeatable) picks accounts; balances-only=1 leaves transactions out.
    ids = [a["id"] for a in first.json()["accounts"]]
    picked = fetch(access, [("account", ids[3]), ("account", ids[0]), ("account", ids[3])])
    numbers = [int(ids[0].rsplit("-", 1)[1]), int(ids[3].rsplit("-", 1)[1])]
    check_account_set(core, admin.family_id, picked.json(), only=numbers)
    balances = fetch(access, {"balances-only": "1"}).json()
    assert check_account_set(core, admin.family_id, balances, balances_only=True) == 0
    both = fetch(access, {"balances-only": "1", "account": ids[5], "pending": "1"}).json()
    check_account_set(
        core,
        admin.family_id,
        both,
        only=[int(ids[5].rsplit("-", 1)[1])],
        balances_only=True,
        pending=True,
    )

    # Bad parameters: 400 naming the parameter, never a server error.
    for params, name in (
        ({"start-date": "yesterday"}, "start-date"),
        ({"start-date": "-5"}, "start-date"),
        ({"end-date": "1.5"}, "end-date"),
        ({"end-date": "9" * 30}, "end-date"),
        ({"start-date": str(end), "end-date": str(start)}, "start-date"),
        ({"pending": "maybe"}, "pending"),
        ({"balances-only": "2"}, "balances-only"),
        ({"account": "42"}, "account"),
        ({"account": "sophsync-account-999999"}, "account"),
        ({"account": "sophsync-account-0"}, "account"),
    ):
        refused(fetch(access, params), 400, name)

    # Wrong, missing and malformed credentials: 403.
    root, (user, password) = credentials_of(access)
    for auth in ((user, password + "x"), (user, ""), ("nobody", password), ("", "")):
        refused(httpx.get(f"{root}/accounts", auth=auth), 403, "revoked")
    refused(httpx.get(f"{root}/accounts"), 403)
    for header in ("Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        refused(httpx.get(f"{root}/accounts", headers={"Authorization": header}), 403)
    refused(httpx.get(f"{root}/accounts", headers={"Authorization": f"Bearer {password}"}), 403)
    # Not a page: unknown paths and methods answer JSON too.
    assert httpx.get(f"{server.url}/simplefin/claim/x").status_code == 405
    assert httpx.get(f"{server.url}/simplefin/nothing").status_code == 404
    assert httpx.get(f"{server.url}/simplefin/access/info").json() == {"versions": ["1.0"]}

    # Revoked: the access reads nothing more; revoking again changes nothing.
    assert simplefin.revoke(core, admin, made.access.id).state is simplefin.State.REVOKED
    refused(fetch(access), 403, "revoked")
    again = simplefin.revoke(core, admin, made.access.id)
    assert again.revoked_at == core.now()


def test_expired_and_revoked_tokens_cannot_be_claimed(
    household: Household, server: WebServer, clock: Clock
) -> None:
    core, admin = household.core, household.admin
    late = simplefin.create_setup_token(core, admin, server.url, "late")
    in_time = simplefin.create_setup_token(core, admin, server.url + "/", "in time")
    dropped = simplefin.create_setup_token(core, admin, server.url, "dropped")
    assert claim_url_of(in_time.token).startswith(f"{server.url}/simplefin/claim/")
    simplefin.revoke(core, admin, dropped.access.id)
    refused(claim(dropped.token), 403)
    clock.advance(days=7, seconds=-1)
    assert claim(in_time.token).status_code == 200
    clock.advance(seconds=1)
    refused(claim(late.token), 403, "expired")
    states = {v.label: v.state for v in simplefin.list_accesses(core, admin)}
    assert states == {
        "late": simplefin.State.EXPIRED,
        "in time": simplefin.State.ACTIVE,
        "dropped": simplefin.State.REVOKED,
    }


def test_an_access_reads_its_own_family_only(household: Household, server: WebServer) -> None:
    core, smiths = household.core, household.admin
    joneses = families.create_family(core, "The Joneses", "jones@example.com", ADMIN_PASSWORD)
    credentials.save_credentials(core, joneses, USER_ID, ACCESS_KEY)
    connect_and_link(core, joneses, username="jones+accounts=2")
    sync.sync_family(core, joneses, poller=FAST)

    def access_of(who: Actor) -> str:
        response = claim(simplefin.create_setup_token(core, who, server.url).token)
        assert response.status_code == 200
        return response.text

    theirs, ours = access_of(joneses), access_of(smiths)
    jones_set = fetch(theirs).json()
    assert check_account_set(core, joneses.family_id, jones_set) > 0
    smith_set = fetch(ours).json()
    check_account_set(core, smiths.family_id, smith_set)
    jones_ids = {a["id"] for a in jones_set["accounts"]}
    assert jones_ids
    assert not jones_ids & {a["id"] for a in smith_set["accounts"]}
    # Another family's account id is refused like an unknown one.
    refused(fetch(ours, {"account": sorted(jones_ids)[0]}), 400, "account")
    # Each family sees and revokes only its own accesses.
    assert len(simplefin.list_accesses(core, joneses)) == 1
    (smith_access,) = simplefin.list_accesses(core, smiths)
    with pytest.raises(Exception, match="No SimpleFIN access"):
        simplefin.revoke(core, joneses, smith_access.id)
    assert fetch(ours).status_code == 200


def test_members_cannot_create_or_revoke(household: Household) -> None:
    core, admin = household.core, household.admin
    kid = families.add_user(core, admin, MEMBER_EMAIL, MEMBER_PASSWORD, families.Role.MEMBER)
    with pytest.raises(PermissionDenied, match="Only a family admin"):
        simplefin.create_setup_token(core, kid, "http://127.0.0.1:8000")
    made = simplefin.create_setup_token(core, admin, "https://money.example.com/sophsync")
    assert claim_url_of(made.token).startswith(
        "https://money.example.com/sophsync/simplefin/claim/"
    )
    with pytest.raises(PermissionDenied):
        simplefin.revoke(core, kid, made.access.id)
    assert [v.state for v in simplefin.list_accesses(core, kid)] == [simplefin.State.WAITING]
    for url in ("ftp://x", "money.example.com", "https://user:pw@x.example", "https://x/?a=1"):
        with pytest.raises(BadInput, match="public URL"):
            simplefin.create_setup_token(core, admin, url)
    with pytest.raises(BadInput, match="label"):
        simplefin.create_setup_token(core, admin, "http://x.example", "x" * 101)


# --- the command line ---------------------------------------------------------------------------


def run_cli(core: Core, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``sophsync ARGS`` on the core's database and key file."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHSYNC_", "SOPHTRON"))}
    environ.update(
        SOPHSYNC_DATABASE_URL=core.settings.url,
        SOPHSYNC_DATA_DIR=str(core.settings.data_dir),
        COLUMNS="200",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "sophsync", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=environ,
    )


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def sophsync(
    household: Household, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """``sophsync ARGS`` in this process, through the console entry point (exit codes and
    one-line errors included): a subprocess costs seconds to start."""
    for name in list(os.environ):
        if name.startswith(("SOPHSYNC_", "SOPHTRON")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SOPHSYNC_DATABASE_URL", household.core.settings.url)
    monkeypatch.setenv("SOPHSYNC_DATA_DIR", str(household.core.settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, **env: str) -> Ran:
        with monkeypatch.context() as changed:
            for name, value in env.items():
                changed.setenv(name, value)
            capsys.readouterr()
            try:
                main(list(args))
                code = 0
            except SystemExit as done:
                code = int(done.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def test_the_command_line_makes_lists_and_revokes(
    household: Household, server: WebServer, sophsync: Callable[..., Ran]
) -> None:
    core, admin = household.core, household.admin
    # As a separate process, as scripts run it.
    made = run_cli(core, "simplefin", "token", "--public-url", server.url, "--label", "HA")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert "\n" not in token
    assert claim_url_of(token).startswith(f"{server.url}/simplefin/claim/")
    assert "works once" in made.stderr
    assert token not in made.stderr
    access = claim(token).text
    check_account_set(core, admin.family_id, fetch(access).json())

    default = sophsync("simplefin", "token", "--json")
    assert default.code == 0, default.err
    shown = json.loads(default.out)
    assert shown["state"] == "waiting"
    assert shown["label"] == "SimpleFIN client"
    assert claim_url_of(shown["token"]).startswith("http://127.0.0.1:8000/simplefin/claim/")
    from_env = sophsync("simplefin", "token", SOPHSYNC_PUBLIC_URL="https://money.example.com/")
    assert from_env.code == 0, from_env.err
    assert claim_url_of(from_env.out.strip()).startswith(
        "https://money.example.com/simplefin/claim/"
    )

    listed = sophsync("simplefin", "list", "--json")
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)
    assert [(r["label"], r["state"]) for r in rows] == [
        ("HA", "active"),
        ("SimpleFIN client", "waiting"),
        ("SimpleFIN client", "waiting"),
    ]
    assert token not in listed.out
    assert credentials_of(access)[1][1] not in listed.out
    table = sophsync("simplefin", "list")
    assert table.code == 0, table.err
    assert re.search(r"HA\s.*active", table.out)

    revoked = run_cli(core, "simplefin", "revoke", str(rows[0]["id"]))
    assert revoked.returncode == 0, revoked.stderr
    assert "Revoked SimpleFIN access" in revoked.stdout
    refused(fetch(access), 403)
    twice = sophsync("simplefin", "revoke", str(rows[0]["id"]))
    assert twice.code == 0
    assert "revoked already" in twice.out

    for args, env, code, words in (
        (("token", "--public-url", "not a url"), {}, 2, "--public-url"),
        (("token",), {"SOPHSYNC_PUBLIC_URL": "ftp://x"}, 2, "SOPHSYNC_PUBLIC_URL"),
        (("revoke", "999"), {}, 1, "No SimpleFIN access 999"),
        (("revoke", "0"), {}, 2, "ID"),
    ):
        failed = sophsync("simplefin", *args, **env)
        assert failed.code == code, failed.err
        (line,) = [text for text in failed.err.splitlines() if text.startswith("Error:")]
        assert words in line
        assert "Traceback" not in failed.err
    assert len(simplefin.list_accesses(core, admin)) == 3


# --- the settings page ----------------------------------------------------------------------------


def test_the_settings_section(household: Household, server: WebServer) -> None:
    core, admin = household.core, household.admin
    families.add_user(core, admin, MEMBER_EMAIL, MEMBER_PASSWORD, families.Role.MEMBER)
    person, kid = Browser(server), Browser(server)
    try:
        person.login(admin.email, ADMIN_PASSWORD)
        page = person.get("/settings")
        section = page.doc.one("section", id="simplefin")
        assert "No SimpleFIN client is connected." in section.text()
        assert "/settings/simplefin" in page.post_actions()

        # Without the CSRF token, or from another site: refused, nothing made.
        assert person.post("/settings/simplefin", {"label": "x"}, csrf=False).status == 403
        cross = person.post(
            "/settings/simplefin", {"label": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status == 403
        assert simplefin.list_accesses(core, admin) == []
        too_long = person.post("/settings/simplefin", {"label": "y" * 101})
        assert too_long.status == 422
        assert "at most 100" in too_long.doc.one("section", id="simplefin").text()

        made = person.post("/settings/simplefin", {"label": "Actual Budget"})
        assert made.status == 200
        (token,) = made.testid("new-setup-token")
        assert claim_url_of(token).startswith(f"{server.url}/simplefin/claim/")
        assert "Actual Budget" in made.doc.one("section", id="simplefin").text()
        access = claim(token).text
        check_account_set(core, admin.family_id, fetch(access).json())
        page = person.get("/settings")
        assert token not in page.text
        assert page.testid("new-setup-token") == []
        (row,) = page.doc.find_all("tr", data_testid="simplefin-access")
        assert "Actual Budget" in row.text()
        assert "active" in row.text()
        (view,) = simplefin.list_accesses(core, admin)
        revoke = f"/settings/simplefin/{view.id}/revoke"
        assert revoke in page.post_actions()

        # A member sees the list and no control, and is refused the admin's forms.
        kid.login(MEMBER_EMAIL, MEMBER_PASSWORD)
        theirs = kid.get("/settings")
        assert "Actual Budget" in theirs.doc.one("section", id="simplefin").text()
        assert not {a for a in theirs.post_actions() if a.startswith("/settings/simplefin")}
        for path, form in (("/settings/simplefin", {"label": "mine"}), (revoke, {})):
            denied = kid.post(path, form)
            assert denied.status == 403
            assert "Only a family admin can" in denied.text
        assert fetch(access).status_code == 200

        assert person.post(revoke, csrf=False).status == 403
        done = person.post(revoke)
        assert done.status == 303
        assert done.location == "/settings#simplefin"
        page = person.get("/settings")
        assert "is revoked" in page.flashes()
        assert revoke not in page.post_actions()
        refused(fetch(access), 403)
    finally:
        person.close()
        kid.close()


# --- a real SimpleFIN client ----------------------------------------------------------------------


# simplefin4py 0.0.18 authenticates the way aiohttp 3.14 deprecates (it still works).
@pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
def test_simplefin4py_claims_and_reads_through_the_bridge(
    household: Household, server: WebServer
) -> None:
    root_logger = logging.getLogger()
    level = root_logger.level
    try:
        from simplefin4py import SimpleFin  # configures logging at import
        from simplefin4py.exceptions import SimpleFinAuthError, SimpleFinClaimError
    finally:
        root_logger.setLevel(level)
    core, admin = household.core, household.admin
    made = simplefin.create_setup_token(core, admin, server.url, "Home Assistant")

    async def read() -> tuple[str, Any]:
        access = await SimpleFin.claim_setup_token(made.token)
        return access, await SimpleFin(access).fetch_data()

    access, data = asyncio.run(read())
    assert urlsplit(access).path == "/simplefin/access"
    assert data.errors == []
    rows = stored_accounts(core, admin.family_id)
    assert [a.id for a in data.accounts] == [f"sophsync-account-{row.id}" for row in rows]
    for account, row in zip(data.accounts, rows, strict=True):
        assert Decimal(account.balance) * 100 == row.balance_minor
        assert account.balance_date == row.balance_at
        assert account.name == row.name
        expected = [t for t in stored_transactions(core, row.id) if not t.pending]
        assert [t.id for t in account.transactions] == [f"sophsync-{t.id}" for t in expected]
        assert [Decimal(t.amount) * 100 for t in account.transactions] == [
            t.amount_minor for t in expected
        ]
        assert [t.posted.date() for t in account.transactions] == [
            t.posted_date or t.date for t in expected
        ]
    # Banks are told apart: one organisation per institution.
    with core.session() as session:
        banks = set(
            session.scalars(
                sa.select(Connection.institution_name).where(
                    Connection.family_id == admin.family_id
                )
            )
        )
    assert len(banks) == 2
    assert {org.name for org in data.accounts_by_org_object} == banks
    assert data.accounts_with_errors == []

    # A bank that asks for MFA again: the client flags that bank's accounts, and only those.
    with core.session() as session:
        stuck = session.scalars(
            sa.select(Connection).where(Connection.family_id == admin.family_id).limit(1)
        ).one()
        stuck.status = ConnectionStatus.REQUIRES_UPDATE.value
        stuck_name = stuck.institution_name
    flagged = asyncio.run(SimpleFin(access).fetch_data())
    assert flagged.errors == [f"Connection to {stuck_name} may need attention"]
    assert {a.org.name for a in flagged.accounts_with_errors} == {stuck_name}
    assert len(flagged.accounts_with_errors) == 6
    raw = fetch(access).json()
    assert raw["errlist"] == [
        {"code": "con.auth", "msg": f"Connection to {stuck_name} may need attention"}
    ]
    # The token again: the library's claim error; revoked: its authentication error. On these
    # paths the library leaves its response unread, so its connection is collected here, where
    # the warning aiohttp gives about it is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(SimpleFinClaimError) as replayed:
            asyncio.run(SimpleFin.claim_setup_token(made.token))
        simplefin.revoke(core, admin, made.access.id)
        with pytest.raises(SimpleFinAuthError) as revoked:
            asyncio.run(SimpleFin(access).fetch_data())
        del replayed, revoked
        gc.collect()
