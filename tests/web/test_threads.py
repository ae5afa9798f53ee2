"""The web app's threads: the database work of the routes shares a few threads (``serve
--threads``), and the routes that wait on Sophtron have threads of their own, so that a slow bank
search holds no page back. Every page that reaches Sophtron is found by what the sandbox counts
while it is called, and must be marked (the API's routes: tests/reliability/test_authz.py)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import event

from sophsync.core import credentials, families, tokens
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue
from sophsync.sandbox import SandboxServer
from sophsync.sandbox import server as sandbox_server
from sophsync.sandbox.app import create_app as create_sandbox_app
from sophsync.store.models import Account, Transaction
from sophsync.web import create_app
from sophsync.web.app import one_thread
from sophsync.web.schemas import TransactionPage
from sophsync.web.threads import DEFAULT_THREADS, MAX_THREADS, waits_on_sophtron
from tests.conftest import ACCESS_KEY, USER_ID
from tests.web.conftest import AppServer, WebServer, reaching_sophtron
from tests.web.test_pages import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Browser,
    family_with_everything,
    page_posts,
)


class Busy:
    """Counts the calls running at once, each taking ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        return {"ok": 1}


@pytest.fixture
def served(make_core: Callable[..., Core], engine_sandbox: SandboxServer) -> Iterator[Any]:
    """Serve the app over a fresh core with ``threads`` database threads, after ``extra`` has
    added to it, using ``sandbox`` (the test's own by default)."""
    servers: list[AppServer] = []

    def serve(
        threads: int,
        extra: Callable[[Any], None] = lambda app: None,
        sandbox: SandboxServer = engine_sandbox,
    ) -> AppServer:
        core = make_core(sandbox)
        app = create_app(core, queue=LocalQueue(core), threads=threads)
        extra(app)
        servers.append(AppServer(app).start())
        return servers[-1]

    yield serve
    for server in servers:
        server.stop()


def test_database_work_shares_the_threads_and_sophtron_waits_on_its_own(served: Any) -> None:
    """Six requests at once of each kind, on an app with two threads for its routes: two at a
    time run on those, all six of those that wait on Sophtron run together (each waits long
    enough for all six to arrive, even on a busy machine)."""
    on_database, on_sophtron = Busy(0.3), Busy(2.0)

    def routes(app: Any) -> None:
        app.get("/busy/database")(on_database)
        app.get("/busy/sophtron")(waits_on_sophtron(on_sophtron))

    server = served(2, routes)
    with httpx.Client(base_url=server.url, timeout=30) as http, ThreadPoolExecutor(12) as pool:
        paths = ["/busy/database"] * 6 + ["/busy/sophtron"] * 6
        statuses = list(pool.map(lambda path: http.get(path).status_code, paths))
    assert statuses == [200] * 12
    assert on_database.most == 2
    assert on_sophtron.most == 6


def test_the_number_of_threads_is_checked() -> None:
    for wrong in (0, MAX_THREADS + 1):
        with pytest.raises(ValueError, match=f"threads must be between 1 and {MAX_THREADS}"):
            create_app(None, queue=None, threads=wrong)  # type: ignore[arg-type]


class HeldSearches:
    """The sandbox's app, holding every institution search until ``release`` is set (and
    setting ``arrived`` when one is held): a bank search as slow as the test needs, with no race
    against the clock however busy the machine."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/GetInstitutionByName"):
            self.arrived.set()
            await anyio.to_thread.run_sync(self.release.wait)
        await self.app(scope, receive, send)


def test_a_slow_bank_search_holds_no_page_back(
    served: Any, make_sandbox: Callable[..., SandboxServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one database thread, pages and the API answer while a search waits on Sophtron (the
    sandbox holds it until every page has answered; a page that waited for it would time out)."""
    held: list[HeldSearches] = []

    def holding(config: Any) -> Any:
        held.append(HeldSearches(create_sandbox_app(config)))
        return held[-1]

    monkeypatch.setattr(sandbox_server, "create_app", holding)
    server = served(1, sandbox=make_sandbox())
    (bank,) = held
    core = server.app.state.core
    admin = families.create_family(core, "The Smiths", ADMIN_EMAIL, ADMIN_PASSWORD)
    credentials.save_credentials(core, admin, USER_ID, ACCESS_KEY)
    secret = tokens.create_token(core, admin, "test")[1]
    bearer = {"Authorization": f"Bearer {secret}"}
    with (
        httpx.Client(base_url=server.url, timeout=10, headers=bearer) as http,
        ThreadPoolExecutor(1) as pool,
    ):
        try:
            search = pool.submit(http.get, "/api/v1/institutions", params={"q": "Sophtron"})
            assert bank.arrived.wait(30), "the search never reached the bank"
            for path in ("/api/v1/me", "/api/v1/transactions", "/", "/transactions"):
                assert http.get(path).status_code in {200, 303}, path
                assert not search.done(), f"{path} ended the search"
        finally:
            bank.release.set()
        assert search.result().status_code == 200


# --- every page that reaches Sophtron is marked (the API's: tests/reliability/test_authz.py) -


def test_every_page_that_reaches_sophtron_waits_on_its_own_threads(
    web: WebServer, engine_sandbox: SandboxServer
) -> None:
    """The admin's searches, then every page form that does something, in turn."""
    ids = family_with_everything(web)
    admin = Browser(web)
    try:
        admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        calls: list[tuple[str, str, Callable[[], object]]] = [
            ("GET", path, lambda path=path: admin.get(path))  # type: ignore[misc]
            for path in ("/connect?q=Sophtron", "/connect/institutions?q=Sophtron")
        ]
        calls += [
            ("POST", path, lambda path=path, form=form: admin.post(path, form))  # type: ignore[misc]
            for _, path, form in page_posts(ids)
            if path not in {"/setup", "/login", "/logout"}
        ]
        found = reaching_sophtron(web.app, engine_sandbox, calls)
    finally:
        admin.close()
    unmarked = [route for route, is_marked in found.items() if not is_marked]
    assert not unmarked, f"pages that wait on Sophtron on the database threads: {unmarked}"
    assert len(found) >= 6, found


# --- a route that reads for its user runs on one thread -------------------------------------


def test_a_page_of_transactions_and_its_user_are_read_on_one_connection(served: Any) -> None:
    """The API's page of transactions finds who asks and reads the page in one go on one web
    thread, on one database connection between them (they took two before): the page is what
    API clients ask for most."""
    server = served(DEFAULT_THREADS)
    core = server.app.state.core
    admin = families.create_family(core, "The Smiths", ADMIN_EMAIL, ADMIN_PASSWORD)
    with core.session() as session:
        account = Account(family_id=admin.family_id, name="Checking")
        session.add(account)
        session.flush()
        account_id = account.id
        session.add_all(
            Transaction(
                account_id=account_id,
                fingerprint=f"f{day}",
                amount_minor=-1250 * day,
                currency="USD",
                date=dt.date(2026, 11, day),
                description=f"Coffee {day}",
            )
            for day in (1, 2, 3)
        )
        session.add(
            Transaction(
                account_id=account_id,
                fingerprint="yen",
                amount_minor=1500,
                currency="JPY",
                date=dt.date(2026, 10, 31),
                posted_date=dt.date(2026, 11, 2),
                pending=True,
                description='Café ☕ "quoted"',
                merchant="Kissa",
                category="Dining",
            )
        )
    secret = tokens.create_token(core, admin, "test")[1]
    checkouts: list[int] = []
    event.listen(core.engine, "checkout", lambda *_: checkouts.append(threading.get_ident()))
    bearer = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer) as http:
        pages = []
        for params in ({"limit": 2}, {"limit": 3, "cursor": "{next}"}, {"q": "coffee 1"}):
            if "cursor" in params:
                params["cursor"] = pages[-1]["next_cursor"]
            checkouts.clear()
            answer = http.get("/api/v1/transactions", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/json"
            assert len(checkouts) == 1, params
            # The page is written without its models: it must still be what the API describes.
            page = TransactionPage.model_validate_json(answer.content)
            assert answer.content == page.model_dump_json().encode()
            pages.append(answer.json())
    first, second, found = pages
    assert [t["description"] for t in first["items"]] == ["Coffee 3", "Coffee 2"]
    assert first["items"][0]["amount"] == "-37.50"
    assert first["items"][0]["amount_minor"] == -3750
    assert first["next_cursor"] == first["items"][-1]["id"]
    assert [t["description"] for t in second["items"]] == ["Coffee 1", 'Café ☕ "quoted"']
    assert second["next_cursor"] is None
    assert second["items"][1] == {
        "id": second["items"][1]["id"],
        "account_id": account_id,
        "provider_id": None,
        "date": "2026-10-31",
        "posted_date": "2026-11-02",
        "pending": True,
        "amount": "1500",
        "amount_minor": 1500,
        "currency": "JPY",
        "description": 'Café ☕ "quoted"',
        "merchant": "Kissa",
        "category": "Dining",
    }
    assert found["items"] == second["items"][:1]


def test_who_asks_is_checked_before_the_parameters(served: Any) -> None:
    """A request with no token and no session is refused as such whatever its parameters, as
    when FastAPI found who asks before reading them; one with a user has its parameters
    checked, and an unknown token is refused."""
    server = served(DEFAULT_THREADS)
    core = server.app.state.core
    admin = families.create_family(core, "The Smiths", ADMIN_EMAIL, ADMIN_PASSWORD)
    secret = tokens.create_token(core, admin, "test")[1]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for path in ("/api/v1/transactions?limit=0", "/api/v1/sync-runs?limit=x", "/api/v1/me"):
            refused = http.get(path)
            assert refused.status_code == 401, (path, refused.text)
            assert refused.json()["error"]["code"] == "unauthenticated"
        unknown = http.get("/api/v1/transactions", headers={"Authorization": "Bearer sps_nobody"})
        assert unknown.status_code == 401
        bearer = {"Authorization": f"Bearer {secret}"}
        wrong = http.get("/api/v1/transactions", params={"limit": 0}, headers=bearer)
        assert wrong.status_code == 422
        assert wrong.json()["error"]["field"] == "limit"
        assert http.get("/api/v1/me", headers=bearer).json()["email"] == ADMIN_EMAIL


def test_one_thread_serves_only_routes_that_read_for_who() -> None:
    with pytest.raises(TypeError, match="must take who and not request"):
        one_thread()(lambda limit=1: limit)
