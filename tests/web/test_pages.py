"""The household's pages over real HTTP, on SQLite and PostgreSQL, without JavaScript: first
run, login, CSRF and the same-site check, what members see and may do, two families, bad input,
transactions (filters, pages, the htmx fragment), totals, the connect dialog with every
challenge, settings, and the REST API's new search parameters.

Every response passes through :func:`_check`: never a 5xx, never a traceback, and every page
error is an HTML page. Expected money is formatted here, independently of the app.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import cached_property
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from sophsync.bridges import simplefin
from sophsync.core import accounts, connect, credentials, families, link, quota, sync, tokens
from sophsync.core.app import Core
from sophsync.core.connect import ConnectionView
from sophsync.core.families import Actor
from sophsync.jobs import Worker, defer_sync
from sophsync.sandbox import SandboxServer
from sophsync.sophtron import PhoneConfirmationPrompt
from sophsync.store.models import (
    Account,
    AccountType,
    BalanceHistory,
    Base,
    ConnectionStatus,
    Job,
    ProviderCredentials,
    Role,
    RunStatus,
)
from sophsync.web import pages
from tests.conftest import ACCESS_KEY, OTHER_USER_ID, TODAY, USER_ID
from tests.core.conftest import ANSWERS, advance, connect_and_link, institution_id
from tests.web.conftest import WebServer

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
MEMBER_EMAIL = "kid@example.com"
MEMBER_PASSWORD = "another password"
NOMFA = "Sophtron Bank NoMFA"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRF-Token": "([^"]+)"')

#: Every page that takes a POST (as the router spells them).
PAGE_POSTS = {
    "/setup",
    "/login",
    "/logout",
    "/accounts/{account_id}",
    "/accounts/{account_id}/link",
    "/accounts/{account_id}/unlink",
    "/sync",
    "/connect",
    "/connections/{connection_id}/poll",
    "/connections/{connection_id}/answer",
    "/connections/{connection_id}/check-again",
    "/connections/{connection_id}/retry",
    "/connections/{connection_id}/login",
    "/connections/{connection_id}/sync",
    "/connections/{connection_id}/remove",
    "/connections/{connection_id}/link",
    "/settings/credentials",
    "/settings/credentials/remove",
    "/settings/members",
    "/settings/members/{user_id}/role",
    "/settings/tokens",
    "/settings/tokens/{token_id}/revoke",
    "/settings/simplefin",
    "/settings/simplefin/{access_id}/revoke",
}
#: The connect dialog's endpoints (they answer htmx with the status fragment).
DIALOG_POSTS = ("poll", "answer", "check-again", "retry", "login")
#: What only admins are shown.
ADMIN_CONTROLS = {
    "POST /sync",
    "POST /connections/{id}/sync",
    "POST /connections/{id}/remove",
    "POST /accounts/{id}",
    "POST /accounts/{id}/unlink",
    "POST /accounts/{id}/link",
    "POST /settings/credentials",
    "POST /settings/credentials/remove",
    "POST /settings/members",
    "POST /settings/members/{id}/role",
    "POST /settings/simplefin",
    "POST /settings/simplefin/{id}/revoke",
    "GET /connect",
    "GET /connections/{id}/dialog",
    "GET /connections/{id}/link",
    "TEXT Connect a bank",
}
#: The only forms a member is shown.
MEMBER_FORMS = re.compile(r"/logout|/settings/tokens|/settings/tokens/\d+/revoke")


# --- a small HTML reader ------------------------------------------------------------------------

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class Node:
    def __init__(self, tag: str, attrs: list[tuple[str, str | None]], parent: Node | None):
        self.tag = tag
        self.attrs = {name: value or "" for name, value in attrs}
        self.children: list[Node | str] = []
        self.parent = parent

    def text(self) -> str:
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join(" ".join(parts).split())

    def iter(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for node in self.iter():
            if tag is not None and node.tag != tag:
                continue
            if all(_matches(node, name, value) for name, value in attrs.items()):
                found.append(node)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Node | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> found"
        return found[0]


def _matches(node: Node, name: str, value: str) -> bool:
    name = name.rstrip("_").replace("_", "-")
    if name == "class":
        return value in node.attrs.get("class", "").split()
    return node.attrs.get(name) == value


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [], None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


# --- pages and browsers ---------------------------------------------------------------------------


class Page:
    """One response of the web app, with its HTML parsed on demand."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.text = response.text

    @cached_property
    def doc(self) -> Node:
        return parse(self.text)

    @property
    def location(self) -> str:
        return self.response.headers["location"]

    @property
    def is_fragment(self) -> bool:
        return "<html" not in self.text and "<body" not in self.text

    def forms(self, method: str = "post") -> list[Node]:
        return [f for f in self.doc.find_all("form") if f.attrs.get("method", "get") == method]

    def form(self, action: str) -> Node:
        found = [f for f in self.doc.find_all("form") if urlsplit(f.attrs["action"]).path == action]
        assert len(found) == 1, f"{len(found)} forms post to {action}: {self.text}"
        return found[0]

    def post_actions(self) -> set[str]:
        return {urlsplit(f.attrs["action"]).path for f in self.forms()}

    def links(self) -> set[str]:
        return {a.attrs["href"] for a in self.doc.find_all("a") if "href" in a.attrs}

    def alerts(self) -> str:
        return " | ".join(node.text() for node in self.doc.find_all(class_="alert"))

    def flashes(self) -> str:
        return " | ".join(node.text() for node in self.doc.find_all(class_="flash"))

    def testid(self, name: str) -> list[str]:
        return [node.text() for node in self.doc.find_all(data_testid=name)]

    def heading(self) -> str:
        return self.doc.one("h1").text()

    def status_section(self) -> Node:
        return self.doc.one("section", id="status")

    @property
    def dialog_status(self) -> str:
        return self.status_section().attrs["data-status"]


def _check(response: httpx.Response) -> None:
    """No server errors, no tracebacks; a page's error is HTML."""
    response.read()
    request = response.request
    assert response.status_code < 500, (
        f"{request.method} {request.url} answered {response.status_code}: {response.text}"
    )
    assert "Traceback" not in response.text
    if response.status_code >= 400 and not request.url.path.startswith("/api/"):
        assert response.headers["content-type"].startswith("text/html"), response.text


class Browser:
    """A person at a browser without JavaScript (or htmx, when asked): cookies kept, and the
    page's CSRF token sent with every form."""

    def __init__(self, web: WebServer, **kwargs: Any) -> None:
        self.http = web.client(event_hooks={"response": [_check]}, **kwargs)
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        data: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        page = Page(self.http.request(method, path, data=data, params=params, headers=headers))
        found = TOKEN.search(page.text)
        if found:
            self.token = found.group(1) or found.group(2)
        return page

    def get(
        self,
        path: str,
        params: Any = None,
        *,
        htmx: bool = False,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        sent = dict(headers or {})
        if htmx:
            sent["HX-Request"] = "true"
        if target is not None:
            sent["HX-Target"] = target
        return self.request("GET", path, params=params, headers=sent)

    def csrf(self) -> str:
        if self.token is None:
            page = self.get("/login")
            if page.status == 303:
                self.get(page.location)
        assert self.token is not None
        return self.token

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        csrf: bool | str = True,
        htmx: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Page:
        form = dict(data or {})
        if csrf is True:
            form["csrf_token"] = self.csrf()
        elif isinstance(csrf, str):
            form["csrf_token"] = csrf
        sent = dict(headers or {})
        if htmx:
            sent["HX-Request"] = "true"
        return self.request("POST", path, data=form, headers=sent)

    def login(self, email: str, password: str) -> None:
        page = self.post("/login", {"email": email, "password": password})
        assert page.status == 303, page.text
        self.token = None  # a login starts a new session, with a new token


@pytest.fixture
def browser(web: WebServer) -> Iterator[Callable[..., Browser]]:
    opened: list[Browser] = []

    def open_browser(server: WebServer = web, **kwargs: Any) -> Browser:
        opened.append(Browser(server, **kwargs))
        return opened[-1]

    yield open_browser
    for client in opened:
        client.close()


# --- helpers --------------------------------------------------------------------------------------


def money(minor: int, symbol: str = "$") -> str:
    """``-$1,234.56``, written independently of the app."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{symbol}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def new_admin(
    web: WebServer,
    email: str = ADMIN_EMAIL,
    family: str = "The Smiths",
    *,
    saved_credentials: bool = True,
) -> Actor:
    actor = families.create_family(web.core, family, email, ADMIN_PASSWORD)
    if saved_credentials:
        credentials.save_credentials(web.core, actor, USER_ID, ACCESS_KEY)
    return actor


def run_jobs(web: WebServer) -> None:
    Worker(web.core, web.queue).run_until_idle()


def synced(web: WebServer, admin: Actor, username: str, bank: str = NOMFA) -> ConnectionView:
    """A connected login, every account linked and synced by a worker."""
    view = connect_and_link(web.core, admin, name=bank, username=username)
    assert defer_sync(web.queue, view.id, trigger="manual") is not None
    run_jobs(web)
    runs = sync.sync_runs(web.core, admin, connection_id=view.id)
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED], runs
    return connect.get_connection(web.core, admin, view.id)


def snapshot(core: Core) -> dict[str, list[str]]:
    """Every row of every table."""
    with core.session() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(sa.select(table)))
            for table in Base.metadata.sorted_tables
        }


def jobs(core: Core) -> list[tuple[str, dict[str, Any], str]]:
    with core.session() as session:
        rows = session.execute(sa.select(Job.task, Job.args, Job.state).order_by(Job.id)).all()
    return [(task, json.loads(args), state) for task, args, state in rows]


def shape(path: str) -> str:
    return re.sub(r"/\d+", "/{id}", path)


def controls(page: Page) -> set[str]:
    """The admin controls a page shows."""
    found = {
        f"POST {shape(action)}"
        for action in page.post_actions()
        if not MEMBER_FORMS.fullmatch(action)
    }
    for href in page.links():
        path = urlsplit(href).path
        if path == "/connect" or path.startswith("/connect/"):
            found.add("GET /connect")
        if re.fullmatch(r"/connections/\d+/(dialog|link)", path):
            found.add(f"GET {shape(path)}")
    if "Connect a bank" in page.doc.text():
        found.add("TEXT Connect a bank")
    return found


def shown_rows(page: Page) -> list[tuple[str, ...]]:
    section = page.doc.one("section", id="transactions")
    body = section.find("tbody")
    if body is None:
        return []
    return [tuple(cell.text() for cell in row.find_all("td")) for row in body.find_all("tr")]


def expected_rows(
    rows: list[accounts.TransactionView], names: dict[int, str] | None
) -> list[tuple[str, ...]]:
    """The rows as the transactions table should show them (``names``: with the account)."""
    result = []
    for t in rows:
        words = [t.merchant or t.description]
        if t.merchant and t.merchant != t.description:
            words.append(t.description)
        if t.pending:
            words.append("pending")
        cells = [t.date.isoformat(), " ".join(" ".join(words).split())]
        if names is not None:
            cells.append(names[t.account_id])
        cells.append(money(t.amount_minor))
        result.append(tuple(cells))
    return result


def older_link(page: Page) -> str | None:
    link_node = page.doc.find("a", rel="next")
    return None if link_node is None else link_node.attrs["href"]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- first run, login, logout ---------------------------------------------------------------------


def test_first_run_login_and_logout(web: WebServer, browser: Callable[..., Browser]) -> None:
    person = browser()
    assert person.get("/").location == "/setup"
    assert person.get("/login").location == "/setup"
    setup = person.get("/setup")
    assert setup.status == 200
    form = setup.form("/setup")
    assert {i.attrs["name"] for i in form.find_all("input")} == {
        "csrf_token",
        "family",
        "email",
        "password",
    }
    good = {"family": "The Smiths", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}

    short = person.post("/setup", {**good, "password": "short"})
    assert short.status == 422
    assert "at least 8 characters" in short.alerts()
    kept = short.form("/setup")
    assert kept.one("input", name="family").attrs["value"] == "The Smiths"
    assert kept.one("input", name="email").attrs["value"] == ADMIN_EMAIL
    assert "value" not in kept.one("input", name="password").attrs
    not_email = person.post("/setup", {**good, "email": "not-an-email"})
    assert not_email.status == 422
    assert "not an email address" in not_email.alerts()
    with_nul = person.post("/setup", {**good, "family": "The\x00Smiths"})
    assert with_nul.status == 422
    assert "family: remove the NUL character" in with_nul.text
    assert not families.is_set_up(web.core)

    created = person.post("/setup", good)
    assert created.status == 303
    assert created.location == "/settings"
    settings = person.get("/settings")
    assert settings.status == 200
    assert "Welcome!" in settings.flashes()
    assert ADMIN_EMAIL in settings.doc.one("div", class_="who").text()
    (admin,) = families.list_users(
        web.core, families.authenticate(web.core, ADMIN_EMAIL, ADMIN_PASSWORD)
    )
    assert admin.role is Role.ADMIN

    # Set up once: the setup page sends to the login; a second setup is refused.
    stranger = browser()
    assert stranger.get("/setup").location == "/login"
    other = {"family": "Others", "email": "other@example.com", "password": ADMIN_PASSWORD}
    refused = stranger.post("/setup", other)
    assert refused.status == 409
    assert "set up already" in refused.alerts()
    assert person.post("/setup", other).status == 409
    assert [f.name for f in families.families(web.core)] == ["The Smiths"]
    assert stranger.get("/").location == "/login?next=%2F"

    # A wrong password: the form again, with the one message for every failure, no session.
    for email, password in (
        (ADMIN_EMAIL, "not the password"),
        ("nobody@example.com", "secret-guess"),
    ):
        wrong = stranger.post("/login", {"email": email, "password": password})
        assert wrong.status == 422
        assert wrong.alerts() == "Wrong email or password"
        assert wrong.form("/login").one("input", name="email").attrs["value"] == email
        assert password not in wrong.text
        assert stranger.get("/").status == 303
        assert stranger.get("/settings").location == "/login?next=%2Fsettings"

    nul = stranger.post("/login", {"email": "admin\x00@example.com", "password": "guess"})
    assert nul.status == 422
    assert "email: remove the NUL character" in nul.text

    # The login page keeps where the person was going (local addresses only).
    action = stranger.get("/login", {"next": "/transactions"}).form("/login").attrs["action"]
    assert query_of(action) == {"next": ["/transactions"]}
    went = stranger.post(
        "/login?next=/transactions",
        {"email": " Admin@Example.com ", "password": ADMIN_PASSWORD},
    )
    assert went.location == "/transactions"
    stranger.token = None
    assert stranger.get("/transactions").status == 200
    for offsite in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        elsewhere = browser()
        page = elsewhere.post(
            f"/login?next={offsite}", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert page.location == "/", offsite

    # Logging out ends the session: pages send to the login again (htmx gets HX-Redirect).
    out = person.post("/logout")
    assert out.status == 303
    assert out.location == "/login"
    person.token = None
    home = person.get("/")
    assert urlsplit(home.location).path == "/login"
    assert query_of(home.location) == {"next": ["/"]}
    swapped = person.get("/transactions", htmx=True, target="transactions")
    assert swapped.status == 204
    assert swapped.response.headers["HX-Redirect"] == "/login?next=%2Ftransactions"
    assert stranger.get("/").status == 200  # the other session lives on


# --- CSRF and the same-site check -----------------------------------------------------------------


def family_with_everything(web: WebServer) -> dict[str, Any]:
    """An admin (saved credentials), a connected login with one account linked and one not, a
    login still connecting, a member and a token of the admin's."""
    admin = new_admin(web)
    view = connect_and_link(web.core, admin, username="everything+accounts=2+years=0.2")
    linked, unlinked = (a.id for a in accounts.list_accounts(web.core, admin))
    link.unlink(web.core, admin, unlinked)
    free = next(
        p.id
        for p in link.provider_accounts(web.core, admin, view.id)
        if p.linked_account_id is None
    )
    stuck = connect.start_connection(
        web.core, admin, institution_id(web.core, admin, NOMFA), "stuck-never-finishes", "pw"
    )
    member = families.add_user(web.core, admin, MEMBER_EMAIL, MEMBER_PASSWORD, Role.MEMBER)
    token, _ = tokens.create_token(web.core, admin, "admin's laptop")
    bridge = simplefin.create_setup_token(web.core, admin, web.url, "budget app")
    return {
        "admin": admin,
        "member": member,
        "cid": view.id,
        "stuck": stuck.id,
        "account": linked,
        "unlinked": unlinked,
        "free": free,
        "token": token.id,
        "simplefin": bridge.access.id,
        "nomfa": institution_id(web.core, admin, NOMFA),
    }


def page_posts(ids: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every page POST with a form that would do something: (route, path, form)."""
    cid, account = ids["cid"], ids["account"]
    return [
        ("/setup", "/setup", {"family": "X", "email": "x@example.com", "password": "long enough"}),
        ("/login", "/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        ("/logout", "/logout", {}),
        (
            "/accounts/{account_id}",
            f"/accounts/{account}",
            {"name": "Renamed", "type": "investment", "subtype": "x", "sync_start_date": ""},
        ),
        (
            "/accounts/{account_id}/link",
            f"/accounts/{ids['unlinked']}/link",
            {"provider_account_id": str(ids["free"])},
        ),
        ("/accounts/{account_id}/unlink", f"/accounts/{account}/unlink", {}),
        ("/sync", "/sync", {}),
        (
            "/connect",
            "/connect",
            {"institution_id": ids["nomfa"], "username": "someone", "password": "pw"},
        ),
        ("/connections/{connection_id}/poll", f"/connections/{ids['stuck']}/poll", {}),
        (
            "/connections/{connection_id}/answer",
            f"/connections/{cid}/answer",
            {"kind": "captcha", "answer": "K7QX2"},
        ),
        (
            "/connections/{connection_id}/check-again",
            f"/connections/{ids['stuck']}/check-again",
            {},
        ),
        ("/connections/{connection_id}/retry", f"/connections/{cid}/retry", {}),
        (
            "/connections/{connection_id}/login",
            f"/connections/{cid}/login",
            {"username": "someone", "password": "pw"},
        ),
        ("/connections/{connection_id}/sync", f"/connections/{cid}/sync", {}),
        ("/connections/{connection_id}/remove", f"/connections/{cid}/remove", {}),
        (
            "/connections/{connection_id}/link",
            f"/connections/{cid}/link",
            {f"a{ids['free']}-link": "on"},
        ),
        ("/settings/credentials", "/settings/credentials", {"user_id": "", "access_key": ""}),
        ("/settings/credentials/remove", "/settings/credentials/remove", {}),
        (
            "/settings/members",
            "/settings/members",
            {"email": "new@example.com", "password": "long enough", "role": "admin"},
        ),
        (
            "/settings/members/{user_id}/role",
            f"/settings/members/{ids['member'].user_id}/role",
            {"role": "admin"},
        ),
        ("/settings/tokens", "/settings/tokens", {"name": "new token"}),
        (
            "/settings/tokens/{token_id}/revoke",
            f"/settings/tokens/{ids['token']}/revoke",
            {},
        ),
        ("/settings/simplefin", "/settings/simplefin", {"label": "x"}),
        (
            "/settings/simplefin/{access_id}/revoke",
            f"/settings/simplefin/{ids['simplefin']}/revoke",
            {},
        ),
    ]


def test_every_page_post_needs_the_csrf_token_and_the_same_site(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    routed = {
        route.path
        for route in pages.router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods
    }
    assert routed == PAGE_POSTS
    ids = family_with_everything(web)
    posts = page_posts(ids)
    assert {route for route, _, _ in posts} == PAGE_POSTS

    admin = browser()
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    token = admin.csrf()
    someone_else = browser()
    someone_else.login(MEMBER_EMAIL, MEMBER_PASSWORD)
    foreign = someone_else.csrf()
    assert foreign != token
    before = snapshot(web.core)

    for _, path, form in posts:
        attempts: list[tuple[str, dict[str, Any]]] = [
            ("no token", {"data": form, "csrf": False}),
            ("wrong token", {"data": form, "csrf": "not-the-token"}),
            ("empty token", {"data": form, "csrf": ""}),
            ("another session's token", {"data": form, "csrf": foreign}),
            (
                "wrong header",
                {"data": form, "csrf": False, "headers": {"X-CSRF-Token": "not-the-token"}},
            ),
            ("htmx without token", {"data": form, "csrf": False, "htmx": True}),
        ]
        for what, kwargs in attempts:
            refused = admin.post(path, **kwargs)
            assert refused.status == 403, (path, what, refused.text)
            assert "This form has expired" in refused.text, (path, what)
            if kwargs.get("htmx"):
                assert refused.is_fragment
            else:
                assert refused.heading() == "Not allowed"
        # A fresh visitor (no session at all) is refused the same way.
        assert browser().post(path, form, csrf=False).status == 403
        # The right token from another site: refused by the same-site check.
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "http://evil.example"},
        ):
            cross = admin.post(path, form, csrf=token, headers=headers)
            assert cross.status == 403, (path, headers)
            assert "Cross-site requests are refused." in cross.response.text
        admin.token = token  # the error pages above rendered the same session's token

    assert snapshot(web.core) == before
    assert web.queue.pending() == 0
    assert admin.get("/").status == 200  # still logged in: the logout was refused too

    # With the token (form field, or the header htmx sends), the same forms work.
    made = admin.post("/settings/tokens", {"name": "from the form"})
    assert made.status == 200
    assert made.testid("new-token")
    queued = admin.post(
        "/sync", {}, csrf=False, headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "same-origin"}
    )
    assert queued.status == 303
    assert [name for name, _, _ in jobs(web.core)] == ["sync_connection"]
    same_origin = admin.post(
        f"/accounts/{ids['account']}",
        {"name": "Bills"},
        headers={"Origin": str(web.url)},
    )
    assert same_origin.status == 303
    assert accounts.get_account(web.core, ids["admin"], ids["account"]).name == "Bills"
    assert [t.name for t in tokens.list_tokens(web.core, ids["admin"])] == [
        "admin's laptop",
        "from the form",
    ]


def test_a_cross_site_page_post_is_refused_with_an_html_page(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    new_admin(web, saved_credentials=False)
    admin = browser()
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    refused = admin.post(
        "/settings/tokens", {"name": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status == 403
    assert refused.response.headers["content-type"].startswith("text/html")


# --- members --------------------------------------------------------------------------------------


def test_members_see_every_page_without_admin_controls_and_change_nothing(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    ids = family_with_everything(web)
    assert defer_sync(web.queue, ids["cid"], trigger="manual") is not None
    run_jobs(web)
    cid, stuck = ids["cid"], ids["stuck"]
    paths = [
        "/",
        "/transactions",
        f"/transactions?account={ids['account']}",
        f"/accounts/{ids['account']}",
        f"/accounts/{ids['unlinked']}",
        "/runs",
        "/settings",
        f"/connections/{cid}",
        f"/connections/{stuck}",
    ]
    admin = browser()
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    kid = browser()
    kid.login(MEMBER_EMAIL, MEMBER_PASSWORD)
    shown_to_admin: set[str] = set()
    for path in paths:
        theirs = admin.get(path)
        mine = kid.get(path)
        assert theirs.status == mine.status == 200, path
        shown_to_admin |= controls(theirs)
        assert controls(mine) == set(), (path, controls(mine))
        assert mine.post_actions() <= {"/logout", "/settings/tokens"}, path
        if path.startswith(("/transactions", "/accounts/")):
            assert shown_rows(mine) == shown_rows(theirs), path
    # Every control exists: the member's pages lack them because of the role.
    assert shown_to_admin == ADMIN_CONTROLS
    kid_home = kid.get("/")
    assert "Primary Checking" in kid_home.text
    assert kid.get("/runs").doc.find("tbody") is not None

    # Every admin action is refused with an HTML error, and nothing changes.
    before = snapshot(web.core)
    admin_only = [
        (path, form)
        for route, path, form in page_posts(ids)
        if route not in {"/setup", "/login", "/logout"} and not route.startswith("/settings/tok")
    ]
    assert len(admin_only) == len(PAGE_POSTS) - 5
    for path, form in admin_only:
        refused = kid.post(path, form)
        assert refused.status == 403, (path, refused.text)
        assert refused.heading() == "Not allowed", path
        assert "Only a family admin can" in refused.text
        assert "Log out" in refused.text  # a whole page, for the member
    for action in DIALOG_POSTS:
        fragment = kid.post(f"/connections/{stuck}/{action}", {"answer": "x"}, htmx=True)
        assert fragment.status == 403
        assert fragment.is_fragment
        assert "Only a family admin can" in fragment.alerts()
    for path in (
        "/connect",
        "/connect/institutions?q=Sophtron",
        f"/connect/login?institution_id={ids['nomfa']}&name=x",
        f"/connections/{cid}/dialog",
        f"/connections/{stuck}/dialog",
        f"/connections/{cid}/link",
    ):
        refused = kid.get(path)
        assert refused.status == 403, path
        assert refused.heading() == "Not allowed"
    # The admin's token is not the member's to revoke.
    assert kid.post(f"/settings/tokens/{ids['token']}/revoke").status == 404
    assert snapshot(web.core) == before
    assert web.queue.pending() == 0

    # Their own tokens are theirs: create, use, revoke.
    created = kid.post("/settings/tokens", {"name": "kid's script"})
    assert created.status == 200
    (secret,) = created.testid("new-token")
    me = httpx.get(
        f"{web.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert me.json()["email"] == MEMBER_EMAIL
    assert me.json()["role"] == "member"
    settings = kid.get("/settings")
    assert secret not in settings.text
    (revoke,) = [a for a in settings.post_actions() if a.endswith("/revoke")]
    revoked = kid.post(revoke)
    assert revoked.status == 303
    assert "The token is revoked." in kid.get("/settings").flashes()
    gone = httpx.get(
        f"{web.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert gone.status_code == 401


# --- two families ---------------------------------------------------------------------------------


def test_another_familys_ids_answer_404(web: WebServer, browser: Callable[..., Browser]) -> None:
    ids = family_with_everything(web)
    assert defer_sync(web.queue, ids["cid"], trigger="manual") is not None
    run_jobs(web)
    new_admin(web, "jones@example.com", "The Joneses", saved_credentials=False)
    jones = browser()
    jones.login("jones@example.com", ADMIN_PASSWORD)
    secrets = ("Primary Checking", ADMIN_EMAIL, MEMBER_EMAIL, "The Smiths", NOMFA)
    before = snapshot(web.core)

    cid, stuck, account = ids["cid"], ids["stuck"], ids["account"]
    for path in (
        f"/accounts/{account}",
        f"/accounts/{ids['unlinked']}",
        f"/accounts/{account}?start=2026-01-01",
        f"/transactions?account={account}",
        f"/connections/{cid}",
        f"/connections/{stuck}",
        f"/connections/{cid}/dialog",
        f"/connections/{stuck}/dialog",
        f"/connections/{cid}/link",
    ):
        page = jones.get(path)
        assert page.status == 404, (path, page.text)
        assert page.heading() == "Not found"
        for secret in secrets:
            assert secret not in page.text, (path, secret)
    for route, path, form in page_posts(ids):
        if route in {
            "/setup",
            "/login",
            "/logout",
            "/sync",
            "/connect",
            "/settings/credentials",
            "/settings/credentials/remove",
            "/settings/members",
            "/settings/tokens",
            "/settings/simplefin",
            "/connections/{connection_id}/link",  # see the test below
        }:
            continue
        page = jones.post(path, form)
        assert page.status == 404, (path, page.text)
        for secret in secrets:
            assert secret not in page.text, (path, secret)
    for action in DIALOG_POSTS:
        fragment = jones.post(f"/connections/{stuck}/{action}", {"answer": "x"}, htmx=True)
        assert fragment.status == 404
        assert fragment.is_fragment
    assert snapshot(web.core) == before

    # Their own pages show nothing of the Smiths.
    for path in ("/", "/transactions", "/runs", "/settings"):
        page = jones.get(path)
        assert page.status == 200
        for secret in secrets:
            assert secret not in page.text, (path, secret)
    assert "No transactions" in jones.get("/transactions").text
    assert "No sync has run yet." in jones.get("/runs").text
    nothing = jones.post("/sync")
    assert nothing.status == 303
    assert "Nothing to sync." in jones.get("/").flashes()
    assert web.queue.pending() == 0


def test_linking_accounts_of_an_unknown_connection_answers_404(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    new_admin(web, saved_credentials=False)
    admin = browser()
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert admin.get("/connections/999999/link").status == 404
    assert admin.post("/connections/999999/link", {"a1-link": "on"}).status == 404


# --- bad input ------------------------------------------------------------------------------------


FILTER_ERRORS = [
    ({"start": "2026-13-01"}, "start"),
    ({"end": "yesterday"}, "end"),
    ({"start": "2026-05-02", "end": "2026-05-01"}, "start"),
    ({"min": "abc"}, "min"),
    ({"max": "NaN"}, "max"),
    ({"min": "Infinity"}, "min"),
    ({"max": "1e400"}, "max"),
    ({"min": "20", "max": "10"}, "min"),
    ({"account": "99999999999"}, "account"),
    ({"account": "abc"}, "account"),
    ({"account": "-1"}, "account"),
    ({"cursor": "99999999999"}, "cursor"),
    ({"cursor": "0"}, "cursor"),
    ({"cursor": "x"}, "cursor"),
    ({"cursor": str(2**31 - 2)}, "cursor"),
]


def test_transaction_filters_refuse_bad_input_by_name(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin = new_admin(web)
    view = synced(web, admin, "filters+accounts=1+years=0.1")
    account = accounts.list_accounts(web.core, admin)[0].id
    assert accounts.list_transactions(web.core, admin, limit=1)
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    for params, field in FILTER_ERRORS:
        for path in ("/transactions", f"/accounts/{account}"):
            page = person.get(path, {**params, "q": "kept"})
            assert page.status == 422, (path, params, page.text)
            message = page.doc.one("section", id="transactions").find(class_="alert")
            assert message is not None, (path, params)
            assert field in message.text(), (path, params, message.text())
            assert shown_rows(page) == []
            assert page.doc.one("input", id="q").attrs["value"] == "kept"
        swapped = person.get("/transactions", params, htmx=True, target="transactions")
        assert swapped.is_fragment
        assert field in swapped.alerts()
    assert connect.get_connection(web.core, admin, view.id).status is ConnectionStatus.CONNECTED


def test_a_cursor_of_another_family_is_refused(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    smiths = new_admin(web)
    synced(web, smiths, "cursor-smiths+accounts=1+years=0.1")
    theirs = accounts.list_transactions(web.core, smiths, limit=1000)
    joneses = new_admin(web, "jones@example.com", "The Joneses")
    synced(web, joneses, "cursor-joneses+accounts=1+years=0.1")
    jones = browser()
    jones.login("jones@example.com", ADMIN_PASSWORD)
    page = jones.get("/transactions", {"cursor": str(theirs[len(theirs) // 2].id)})
    assert page.status == 422
    assert "cursor" in page.alerts()


def test_unknown_pages_and_ids_answer_404(web: WebServer, browser: Callable[..., Browser]) -> None:
    new_admin(web, saved_credentials=False)
    anonymous = browser()
    assert anonymous.get("/nope").status == 404
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    for path in (
        "/nope",
        "/accounts",
        "/accounts/0",
        "/accounts/-1",
        "/accounts/abc",
        "/accounts/1.5",
        "/accounts/99999999999",
        f"/accounts/{2**31 - 1}",
        "/connections/0",
        "/connections/abc",
        f"/connections/{2**63}",
        "/connections/99999999999/dialog",
        "/connections/424242/link",
        f"/transactions?account={2**31 - 1}",
    ):
        page = person.get(path)
        assert page.status == 404, (path, page.text)
        assert page.heading() == "Not found"
        assert "Log out" in page.text  # the person stays logged in, with the navigation
    for path in (
        "/accounts/0",
        "/accounts/abc/unlink",
        "/accounts/424242/link",
        "/connections/abc/poll",
        "/connections/0/remove",
        "/connections/424242/sync",
        "/settings/members/99999999999/role",
        "/settings/members/424242/role",
        "/settings/tokens/0/revoke",
        "/settings/tokens/424242/revoke",
    ):
        page = person.post(path, {"role": "admin", "provider_account_id": "1"})
        assert page.status == 404, (path, page.text)
        assert page.heading() == "Not found"
    fragment = person.post("/connections/424242/poll", htmx=True)
    assert fragment.status == 404
    assert fragment.is_fragment
    assert "No connection 424242" in fragment.alerts()


def test_forms_show_their_errors_and_change_nothing(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin = new_admin(web)
    view = connect_and_link(web.core, admin, username="forms+accounts=2+years=0.1")
    first, second = accounts.list_accounts(web.core, admin)
    link.unlink(web.core, admin, second.id)
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    # Linking with a bad sync start date: the form again, with the reason; nothing linked.
    (free,) = [
        p for p in link.provider_accounts(web.core, admin, view.id) if p.linked_account_id is None
    ]
    form_page = person.get(f"/connections/{view.id}/link")
    assert form_page.status == 200
    start_input = form_page.doc.one("input", name=f"a{free.id}-start")
    assert start_input.attrs["max"] == TODAY.isoformat()
    before = snapshot(web.core)
    for start, words in (
        ((TODAY + dt.timedelta(days=1)).isoformat(), "cannot be in the future"),
        ("2020-01-01", "at most 3 years"),
        ("31/12/2025", "sync start date"),
    ):
        refused = person.post(
            f"/connections/{view.id}/link",
            {f"a{free.id}-link": "on", f"a{free.id}-target": "new", f"a{free.id}-start": start},
        )
        assert refused.status == 422, start
        assert words in refused.alerts(), (start, refused.alerts())
        again = refused.form(f"/connections/{view.id}/link")
        assert again.one("input", name=f"a{free.id}-start").attrs["value"] == start
        assert snapshot(web.core) == before
    assert web.queue.pending() == 0

    # An account's settings: errors are flashed on the account page, nothing saved.
    for form, words in (
        ({"name": "  "}, "An account needs a name"),
        ({"name": "Fine", "sync_start_date": "2026-02-30"}, "sync_start_date"),
    ):
        sent = person.post(f"/accounts/{first.id}", form)
        assert sent.status == 303
        assert sent.location == f"/accounts/{first.id}"
        assert words in person.get(sent.location).flashes()
    refused = person.post(f"/accounts/{second.id}/link", {"provider_account_id": ""})
    assert refused.status == 303
    assert "Choose the bank account to link" in person.get(refused.location).flashes()
    assert snapshot(web.core) == before

    # And the same forms, right: saved.
    saved = person.post(
        f"/accounts/{first.id}",
        {"name": "Bills", "type": "credit_card", "subtype": "charge card", "sync_start_date": ""},
    )
    assert saved.status == 303
    assert "Saved." in person.get(saved.location).flashes()
    changed = accounts.get_account(web.core, admin, first.id)
    assert (changed.name, changed.type, changed.subtype) == (
        "Bills",
        AccountType.CREDIT_CARD,
        "charge card",
    )
    relinked = person.post(f"/accounts/{second.id}/link", {"provider_account_id": str(free.id)})
    assert relinked.status == 303
    assert accounts.get_account(web.core, admin, second.id).linked
    assert [task for task, _, _ in jobs(web.core)] == ["sync_connection"]
    unlinked = person.post(f"/accounts/{second.id}/unlink")
    assert unlinked.status == 303
    assert not accounts.get_account(web.core, admin, second.id).linked
    twice = person.post(f"/accounts/{second.id}/unlink")
    assert twice.status == 409
    assert "is not linked" in twice.text


def test_a_refused_link_form_links_nothing(web: WebServer, browser: Callable[..., Browser]) -> None:
    admin = new_admin(web)
    view = connect.start_connection(
        web.core, admin, institution_id(web.core, admin, NOMFA), "partial+accounts=2", "pw"
    )
    assert (
        connect.wait_for_connection(web.core, view.id, interval=0, timeout=10).status
        is ConnectionStatus.CONNECTED
    )
    first, second = link.provider_accounts(web.core, admin, view.id)
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    future = (TODAY + dt.timedelta(days=3)).isoformat()
    refused = person.post(
        f"/connections/{view.id}/link",
        {f"a{first.id}-link": "on", f"a{second.id}-link": "on", f"a{second.id}-start": future},
    )
    assert refused.status == 422
    assert [p.linked_account_id for p in link.provider_accounts(web.core, admin, view.id)] == [
        None,
        None,
    ]


# --- transactions, totals, balance history --------------------------------------------------------


def logged_in_with_history(
    web: WebServer, browser: Callable[..., Browser], username: str
) -> tuple[Actor, dict[int, str], list[accounts.TransactionView], Browser]:
    """An admin whose synced login holds over 100 transactions, logged in: the admin, account
    names by id, every transaction (newest first) and the browser."""
    admin = new_admin(web)
    synced(web, admin, username)
    names = {a.id: a.name for a in accounts.list_accounts(web.core, admin)}
    everything = accounts.list_transactions(web.core, admin, limit=1000)
    assert len(everything) > 100
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    return admin, names, everything, person


def test_transactions_page_filters_match_the_core(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin, names, everything, person = logged_in_with_history(
        web, browser, "filtering+accounts=2+years=0.3"
    )
    core = web.core

    def check(params: dict[str, str], **wanted: Any) -> list[accounts.TransactionView]:
        page = person.get("/transactions", params)
        assert page.status == 200, (params, page.text)
        expected = accounts.list_transactions(core, admin, limit=50, **wanted)
        assert shown_rows(page) == expected_rows(expected, names), params
        for name, value in params.items():  # the filters are shown as chosen
            field = page.doc.one(id=name)
            if field.tag == "select":
                chosen = field.find("option", selected="")
                assert chosen is not None
                assert chosen.attrs["value"] == value, name
            else:
                assert field.attrs["value"] == value, name
        return expected

    # Search: a merchant's name in another case finds it, in the description or the merchant.
    merchant = next(t.merchant for t in everything if t.merchant and len(t.merchant) > 5)
    assert merchant is not None
    found = check({"q": merchant.upper()}, search=merchant.upper())
    assert found
    assert all(
        merchant.lower() in (t.merchant or "").lower() + " " + t.description.lower() for t in found
    )
    nothing = person.get("/transactions", {"q": "zzz-no-such-thing"})
    assert "No transactions match these filters." in nothing.text

    # One account.
    account = next(iter(names))
    only = check({"account": str(account)}, account_id=account)
    assert only
    assert {t.account_id for t in only} == {account}

    # Dates, inclusive.
    low, high = everything[60].date, everything[20].date
    window = check({"start": low.isoformat(), "end": high.isoformat()}, start=low, end=high)
    assert window
    assert all(low <= t.date <= high for t in window)

    # Amount sizes: money in and out alike, either sign typed, "$1,000" style too.
    spent = next(t for t in everything if t.amount_minor < 0)
    earned = next(t for t in everything if t.amount_minor > 0)
    small, large = sorted((abs(spent.amount_minor), abs(earned.amount_minor)))
    bounds = {"min": f"{small / 100:.2f}", "max": f"{large / 100:.2f}"}
    low, high = Decimal(small) / 100, Decimal(large) / 100
    sized = check(bounds, min_amount=low, max_amount=high)
    assert all(small <= abs(t.amount_minor) <= large for t in sized)
    every_size = accounts.list_transactions(
        core, admin, min_amount=low, max_amount=high, limit=1000
    )
    assert {spent.id, earned.id} <= {t.id for t in every_size}
    assert sized == every_size[:50]
    negative = person.get("/transactions", {"min": f"-{small / 100:.2f}", "max": bounds["max"]})
    assert shown_rows(negative) == expected_rows(sized, names)
    styled = person.get("/transactions", {"max": "$1,000.00"})
    assert shown_rows(styled) == expected_rows(
        accounts.list_transactions(core, admin, limit=50, max_amount=Decimal(1000)), names
    )
    exact = check(
        {"min": bounds["min"], "max": bounds["min"]},
        min_amount=low,
        max_amount=low,
    )
    assert exact
    assert {abs(t.amount_minor) for t in exact} == {small}

    # Pending or posted.
    pending = check({"pending": "yes"}, pending=True)
    posted = check({"pending": "no"}, pending=False)
    assert pending
    assert all(t.pending for t in pending)
    assert posted
    assert not any(t.pending for t in posted)
    assert all("pending" in row[1] for row in shown_rows(person.get("/transactions?pending=yes")))

    # Everything at once.
    check(
        {"q": "a", "account": str(account), "pending": "no", "max": "500"},
        search="a",
        account_id=account,
        pending=False,
        max_amount=Decimal(500),
    )


def test_transactions_pages_and_the_htmx_fragment(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin, names, everything, person = logged_in_with_history(
        web, browser, "paging+accounts=2+years=0.5+daily=2"
    )
    core = web.core

    def walk(path: str, params: dict[str, str], rows: list[accounts.TransactionView]) -> int:
        """Follow the Older links from the first page: the pages are ``rows``, 50 at a time."""
        shown: list[tuple[str, ...]] = []
        page = person.get(path, params)
        pages = 1
        assert not [a for a in page.doc.find_all("a") if a.text() == "« Newest"]
        while True:
            assert page.status == 200
            on_page = shown_rows(page)
            assert len(on_page) <= 50
            shown.extend(on_page)
            older = older_link(page)
            if older is None:
                break
            assert len(on_page) == 50
            assert urlsplit(older).path == path
            cursor = query_of(older)["cursor"]
            assert cursor == [str(rows[len(shown) - 1].id)]
            for name, value in params.items():  # the filters stay on
                assert query_of(older)[name] == [value]
            page = person.get(older)
            pages += 1
            newest = [a for a in page.doc.find_all("a") if a.text() == "« Newest"]
            assert len(newest) == 1
            assert "cursor" not in query_of(newest[0].attrs["href"])
        with_account = path == "/transactions"
        assert shown == expected_rows(rows, names if with_account else None)
        return pages

    assert walk("/transactions", {}, everything) == (len(everything) + 49) // 50
    posted = accounts.list_transactions(core, admin, pending=False, limit=1000)
    assert walk("/transactions", {"pending": "no"}, posted) == (len(posted) + 49) // 50
    account = max(names, key=lambda a: sum(t.account_id == a for t in everything))
    mine = accounts.list_transactions(core, admin, account_id=account, limit=1000)
    assert len(mine) > 50
    assert walk(f"/accounts/{account}", {}, mine) == (len(mine) + 49) // 50

    # htmx asks for the table only.
    full = person.get("/transactions", {"q": "a"})
    fragment = person.get("/transactions", {"q": "a"}, htmx=True, target="transactions")
    assert fragment.status == 200
    assert fragment.is_fragment
    assert fragment.text.lstrip().startswith('<section id="transactions"')
    assert fragment.doc.find("form") is None
    assert len(fragment.doc.find_all("section")) == 1
    assert shown_rows(fragment) == shown_rows(full)
    assert older_link(fragment) == older_link(full)
    assert older_link(fragment) is not None
    # The next page, as htmx would fetch it.
    next_page = person.get(older_link(fragment) or "", htmx=True, target="transactions")
    assert next_page.is_fragment
    assert shown_rows(next_page) == shown_rows(person.get(older_link(full) or ""))
    account_fragment = person.get(f"/accounts/{account}", htmx=True, target="transactions")
    assert account_fragment.is_fragment
    assert shown_rows(account_fragment) == expected_rows(mine[:50], None)
    # Other htmx targets get the whole page.
    other = person.get("/transactions", htmx=True, target="content")
    assert not other.is_fragment
    assert other.doc.find("form", role="search") is not None


def test_dashboard_totals_and_balance_history(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin = new_admin(web)
    view = synced(web, admin, "totals+accounts=3+years=0.1")
    core = web.core
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    mine = accounts.list_accounts(core, admin)
    assert len(mine) == 3
    home = person.get("/")
    assert home.testid("net-worth") == [money(sum(a.balance_minor for a in mine))]
    for account in mine:
        row = next(
            tr for tr in home.doc.find_all("tr") if tr.find("a", href=f"/accounts/{account.id}")
        )
        assert money(account.balance_minor) in row.text()
    connection_row = next(
        tr for tr in home.doc.find_all("tr") if tr.find("a", href=f"/connections/{view.id}")
    )
    assert "2026-11-21 12:00 UTC" in connection_row.text()  # synced now
    assert "2026-11-22 06:00 UTC" in connection_row.text()  # next: tomorrow's sync time

    # Known balances: a negative net worth, thousands separators, a second currency.
    first, second, third = (a.id for a in mine)
    with core.session() as session:
        for account_id, balance in ((first, 100_000), (second, -223_456), (third, 0)):
            session.get_one(Account, account_id).balance_minor = balance
        session.add(
            Account(
                family_id=admin.family_id,
                name="Toronto savings",
                type=AccountType.DEPOSITORY.value,
                currency="CAD",
                balance_minor=123_456_789,
            )
        )
    home = person.get("/")
    assert home.testid("net-worth") == ["CA$1,234,567.89", "-$1,234.56"]
    totals = {
        card.find(class_="label").text(): [v.text() for v in card.find_all(class_="value")]
        for card in home.doc.one("section", aria_label="Totals").find_all(class_="stat")
        if card.find(class_="label") is not None
    }
    expected = accounts.summarize(accounts.list_accounts(core, admin))
    assert totals["Net worth"] == ["CA$1,234,567.89", "-$1,234.56"]
    for kind, sums in expected.by_type:
        label = kind.value.replace("_", " ").capitalize()
        assert totals[label] == [
            money(t.minor, "CA$" if t.currency == "CAD" else "$") for t in sums
        ], label
    negative = [node for node in home.doc.find_all(data_testid="net-worth")]
    assert "neg" in negative[1].attrs["class"].split()
    assert "neg" not in negative[0].attrs["class"].split()

    # Balance history: the last year of rows, oldest first.
    assert [day for day, _ in accounts.balance_history(core, admin, first)] == [TODAY]
    page = person.get(f"/accounts/{first}")
    assert page.doc.find("svg") is None  # one day of history (today's sync) draws no line
    assert "The balance history grows with each daily sync." in page.text
    with core.session() as session:
        for days, balance in ((400, 1), (30, 150_000), (10, -5_025)):
            session.add(
                BalanceHistory(
                    account_id=first,
                    date=TODAY - dt.timedelta(days=days),
                    balance_minor=balance,
                )
            )
    history = accounts.balance_history(core, admin, first, since=TODAY - dt.timedelta(days=365))
    assert history[0][0] == TODAY - dt.timedelta(days=30)
    page = person.get(f"/accounts/{first}")
    chart = page.doc.one("svg")
    today_balance = history[-1][1]
    assert chart.one("title").text() == (
        f"Balance from {TODAY - dt.timedelta(days=30)} ($1,500.00) to {TODAY} "
        f"({money(today_balance)})"
    )
    points = chart.one("polyline").attrs["points"].split()
    assert len(points) == len(history) == 3
    assert page.testid("balance") == ["$1,000.00"]
    # An account without history says so.
    (toronto,) = [a.id for a in accounts.list_accounts(core, admin) if a.currency == "CAD"]
    empty = person.get(f"/accounts/{toronto}")
    assert empty.doc.find("svg") is None
    assert "The balance history grows with each daily sync." in empty.text
    assert empty.testid("balance") == ["CA$1,234,567.89"]
    # A member sees the same totals.
    families.add_user(core, admin, MEMBER_EMAIL, MEMBER_PASSWORD, Role.MEMBER)
    kid = browser()
    kid.login(MEMBER_EMAIL, MEMBER_PASSWORD)
    assert kid.get("/").testid("net-worth") == ["CA$1,234,567.89", "-$1,234.56"]


# --- the connect dialog ---------------------------------------------------------------------------


def settle(person: Browser, connection_id: int) -> Page:
    """Poll (as htmx does) until the connection is no longer connecting."""
    for _ in range(100):
        page = person.post(f"/connections/{connection_id}/poll", htmx=True)
        assert page.status == 200, page.text
        assert page.is_fragment
        if page.dialog_status != "connecting":
            return page
        # Still working: the fragment polls again by itself.
        assert page.status_section().find(hx_post=f"/connections/{connection_id}/poll")
    raise AssertionError(f"connection {connection_id} kept connecting")


def answer_form(page: Page, connection_id: int) -> tuple[str, Node]:
    form = page.form(f"/connections/{connection_id}/answer")
    return form.one("input", name="kind").attrs["value"], form


def good_answer(kind: str, form: Node) -> dict[str, Any]:
    inputs = [i for i in form.find_all("input") if i.attrs.get("name") == "answer"]
    if kind == "security_questions":
        answers = list(ANSWERS["security_questions"])[: len(inputs)]
        assert len(answers) == len(inputs)
        return {"kind": kind, "answer": answers}
    if kind == "token_method":
        values = [i.attrs["value"] for i in inputs]
        assert values == [str(n) for n in range(len(values))]
        return {"kind": kind, "answer": values[0]}
    if kind == "phone_confirmation":
        (hidden,) = inputs
        assert hidden.attrs == {"type": "hidden", "name": "answer", "value": "yes"}
        return {"kind": kind, "answer": "yes"}
    assert len(inputs) == 1
    return {"kind": kind, "answer": ANSWERS[kind]}


def start_at(person: Browser, institution: str, name: str, username: str, password: str) -> int:
    started = person.post(
        "/connect",
        {
            "institution_id": institution,
            "institution_name": name,
            "username": username,
            "password": password,
        },
    )
    assert started.status == 303, started.text
    found = re.fullmatch(r"/connections/(\d+)/dialog", started.location)
    assert found is not None, started.location
    return int(found.group(1))


def test_connecting_with_every_challenge_over_plain_http(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin = new_admin(web)
    core = web.core
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    # Find the bank as a browser without JavaScript would.
    connect_page = person.get("/connect")
    assert connect_page.status == 200
    assert connect_page.doc.one("input", id="institution-search").attrs["hx-get"] == (
        "/connect/institutions"
    )
    assert "at least two letters" in person.get("/connect/institutions", {"q": "S"}).text
    assert "No institution matches" in person.get("/connect/institutions", {"q": "Qzxv"}).text
    results = person.get("/connect/institutions", {"q": "Sophtron Bank"})
    assert results.is_fragment
    choices = {
        form.one("input", name="name").attrs["value"]: {
            i.attrs["name"]: i.attrs["value"] for i in form.find_all("input")
        }
        for form in results.forms("get")
    }
    assert {"Sophtron Bank", NOMFA} <= set(choices)
    chosen = choices["Sophtron Bank"]
    assert chosen["institution_id"] == institution_id(core, admin, "Sophtron Bank")
    login_page = person.get("/connect/login", chosen)
    assert login_page.status == 200
    form = login_page.form("/connect")
    hidden = {
        i.attrs["name"]: i.attrs["value"]
        for i in form.find_all("input")
        if i.attrs.get("type") == "hidden" and i.attrs["name"] != "csrf_token"
    }
    assert hidden["institution_id"] == chosen["institution_id"]
    assert person.get("/connect/login").location == "/connect"

    blank = person.post("/connect", {**hidden, "username": " ", "password": "pw"})
    assert blank.status == 422
    assert "Enter the bank username" in blank.alerts()
    assert (
        blank.form("/connect").one("input", name="institution_id").attrs["value"]
        == (hidden["institution_id"])
    )
    assert connect.list_connections(core, admin) == []

    started = person.post("/connect", {**hidden, "username": "walker", "password": "pw"})
    assert started.status == 303
    cid = int(started.location.split("/")[2])
    dialog = person.get(started.location)
    assert dialog.status == 200
    assert dialog.dialog_status == "connecting"
    assert dialog.status_section().find(hx_post=f"/connections/{cid}/poll") is not None
    assert dialog.heading() == "Sophtron Bank"

    seen: list[str] = []
    page = settle(person, cid)
    while page.dialog_status == "needs_input":
        kind, form = answer_form(page, cid)
        seen.append(kind)
        # An empty answer: the same challenge again, with the reason.
        empty = person.post(f"/connections/{cid}/answer", {"kind": kind, "answer": ""}, htmx=True)
        assert empty.status == 200
        assert empty.is_fragment
        assert "Enter an answer" in empty.alerts()
        assert empty.dialog_status == "needs_input"
        assert answer_form(empty, cid)[0] == kind
        assert connect.get_connection(core, admin, cid).prompt is not None
        if kind == "captcha":
            image = form.one("img").attrs["src"]
            assert image.startswith("data:image/png;base64,")
        answered = person.post(f"/connections/{cid}/answer", good_answer(kind, form), htmx=True)
        assert answered.status == 200, answered.text
        assert answered.dialog_status == "connecting", answered.alerts()
        page = settle(person, cid)
    assert seen == ["captcha", "security_questions", "token_method", "token_input"]
    assert page.dialog_status == "connected"
    assert "Sophtron found" in page.text
    assert f"/connections/{cid}/link" in page.links()

    # Link every account from the link page (the defaults), and the first sync is queued.
    link_page = person.get(f"/connections/{cid}/link")
    sources = link.provider_accounts(core, admin, cid)
    fields: dict[str, Any] = {}
    for source in sources:
        prefix = f"a{source.id}-"
        assert link_page.doc.one("input", name=prefix + "link").attrs.get("checked") == ""
        fields[prefix + "link"] = "on"
        fields[prefix + "target"] = "new"
        fields[prefix + "name"] = link_page.doc.one("input", name=prefix + "name").attrs["value"]
        fields[prefix + "type"] = source.kind.value
        fields[prefix + "start"] = link_page.doc.one("input", name=prefix + "start").attrs["value"]
    fields[f"a{sources[0].id}-name"] = "Everyday"
    linked = person.post(f"/connections/{cid}/link", fields)
    assert linked.status == 303
    assert linked.location == "/"
    assert f"Linked {len(sources)} account(s)." in person.get("/").flashes()
    assert [(task, args["trigger"]) for task, args, _ in jobs(core)] == [
        ("sync_connection", "link")
    ]
    run_jobs(web)
    (run,) = sync.sync_runs(core, admin)
    assert run.status is RunStatus.SUCCEEDED
    assert run.trigger == "link"
    assert accounts.list_accounts(core, admin)[0].name == "Everyday"
    assert (
        "Every account of this connection is linked." in person.get(f"/connections/{cid}/link").text
    )


def test_security_questions_and_phone_confirmation_without_htmx(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin = new_admin(web)
    core = web.core
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    multiple = "Sophtron Bank SecurityQuestion Multiple"
    cid = start_at(person, institution_id(core, admin, multiple), multiple, "asked", "pw")
    page = settle(person, cid)
    kind, form = answer_form(page, cid)
    assert kind == "security_questions"
    questions = [label.text() for label in form.find_all("label")]
    assert questions == [
        "What is your favorite color?",
        "What was the name of your first pet?",
        "What is your mother's middle name?",
    ]
    # One of three left empty: refused (htmx and plain forms alike).
    partial = {"kind": kind, "answer": ["blue", "", "ann"]}
    refused = person.post(f"/connections/{cid}/answer", partial, htmx=True)
    assert "Enter an answer" in refused.alerts()
    assert refused.dialog_status == "needs_input"
    plain = person.post(f"/connections/{cid}/answer", partial)
    assert plain.status == 303
    assert plain.location == f"/connections/{cid}/dialog"
    dialog = person.get(plain.location)
    assert "Enter an answer" in dialog.flashes()
    assert answer_form(dialog, cid)[0] == "security_questions"
    # Three answers, as a plain form: the dialog page shows the progress.
    sent = person.post(f"/connections/{cid}/answer", good_answer(kind, form))
    assert sent.status == 303
    assert person.get(sent.location).dialog_status == "connecting"
    assert settle(person, cid).dialog_status == "connected"

    phone = "Sophtron Bank TokenRead"
    cid = start_at(person, institution_id(core, admin, phone), phone, "caller", "pw")
    page = settle(person, cid)
    kind, form = answer_form(page, cid)
    assert kind == "phone_confirmation"
    prompt = connect.get_connection(core, admin, cid).prompt
    assert isinstance(prompt, PhoneConfirmationPrompt)
    assert page.doc.one(class_="code").text() == prompt.code
    confirmed = person.post(f"/connections/{cid}/answer", good_answer(kind, form))
    assert confirmed.status == 303
    page = person.get(f"/connections/{cid}/dialog")
    assert page.dialog_status == "connecting"
    # The plain page polls by reloading (the refresh button without JavaScript).
    assert page.doc.find("noscript") is not None
    polled = person.post(f"/connections/{cid}/poll")
    assert polled.status == 303
    assert person.get(polled.location).dialog_status == "connected"
    assert [v.status for v in connect.list_connections(core, admin)] == [
        ConnectionStatus.CONNECTED,
        ConnectionStatus.CONNECTED,
    ]


def test_a_slow_bank_a_wrong_answer_and_a_wrong_password(
    web: WebServer, browser: Callable[..., Browser]
) -> None:
    admin = new_admin(web)
    core = web.core
    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    # Slow: connecting, then timed out; check again keeps waiting.
    cid = start_at(person, institution_id(core, admin, NOMFA), NOMFA, "slow+never-finishes", "pw")
    first = person.post(f"/connections/{cid}/poll", htmx=True)
    assert first.dialog_status == "connecting"
    core.clock.advance(seconds=core.settings.connect_timeout_seconds + 60)
    late = person.post(f"/connections/{cid}/poll", htmx=True)
    assert late.dialog_status == "timed_out"
    assert "taking long" in late.alerts()
    assert {f"/connections/{cid}/check-again", f"/connections/{cid}/retry"} <= late.post_actions()
    again = person.post(f"/connections/{cid}/check-again", htmx=True)
    assert again.status == 200
    assert again.dialog_status == "connecting"
    # Nothing to answer: an answer is refused, the fragment says so.
    nothing = person.post(f"/connections/{cid}/answer", {"answer": "x"}, htmx=True)
    assert "not asking anything" in nothing.alerts()
    assert nothing.dialog_status == "connecting"

    # A wrong answer fails the login; starting over asks again.
    captcha = "Sophtron Bank Captcha"
    cid = start_at(person, institution_id(core, admin, captcha), captcha, "oops", "pw")
    page = settle(person, cid)
    assert answer_form(page, cid)[0] == "captcha"
    sent = person.post(
        f"/connections/{cid}/answer", {"kind": "captcha", "answer": "wrong"}, htmx=True
    )
    assert sent.dialog_status == "connecting"
    failed = settle(person, cid)
    assert failed.dialog_status == "failed"
    assert failed.alerts()
    assert f"/connections/{cid}/retry" in failed.post_actions()
    assert connect.get_connection(core, admin, cid).error_code
    retried = person.post(f"/connections/{cid}/retry", htmx=True)
    assert retried.dialog_status == "connecting"
    page = settle(person, cid)
    kind, form = answer_form(page, cid)
    assert kind == "captcha"
    person.post(f"/connections/{cid}/answer", good_answer(kind, form), htmx=True)
    assert settle(person, cid).dialog_status == "connected"

    # A wrong bank password: the dialog asks for the login again.
    cid = start_at(person, institution_id(core, admin, NOMFA), NOMFA, "forgetful", "wrong")
    refused = settle(person, cid)
    assert refused.dialog_status == "failed"
    assert connect.get_connection(core, admin, cid).needs_login
    new_login = refused.form(f"/connections/{cid}/login")
    assert {i.attrs["name"] for i in new_login.find_all("input")} == {
        "csrf_token",
        "username",
        "password",
        "pin",
    }
    home = person.get("/")
    assert "needs you" in home.alerts()
    assert f"/connections/{cid}/dialog" in home.links()
    sent = person.post(
        f"/connections/{cid}/login", {"username": "forgetful", "password": "right"}, htmx=True
    )
    assert sent.dialog_status == "connecting"
    assert settle(person, cid).dialog_status == "connected"
    assert "needs you" not in person.get("/").alerts()


def test_reconnecting_through_the_dialog_resumes_the_sync(
    web: WebServer, browser: Callable[..., Browser], engine_sandbox: SandboxServer
) -> None:
    admin = new_admin(web)
    core = web.core
    view = synced(
        web, admin, "again+mfa-again+accounts=1+years=0.2", "Sophtron Bank SecurityQuestion"
    )
    before = len(accounts.list_transactions(core, admin, limit=1000))
    advance(engine_sandbox, core.clock, 2)
    assert defer_sync(web.queue, view.id, trigger="manual") is not None
    run_jobs(web)
    asked = sync.sync_runs(core, admin, connection_id=view.id)[0]
    assert asked.status is RunStatus.NEEDS_INPUT
    assert connect.get_connection(core, admin, view.id).status is ConnectionStatus.REQUIRES_UPDATE

    person = browser()
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    home = person.get("/")
    assert "needs you" in home.alerts()
    assert f"/connections/{view.id}/dialog" in home.links()
    dialog = person.get(f"/connections/{view.id}/dialog")
    assert dialog.dialog_status == "requires_update"
    kind, form = answer_form(dialog, view.id)
    assert kind == "security_questions"
    answered = person.post(f"/connections/{view.id}/answer", good_answer(kind, form), htmx=True)
    assert answered.dialog_status == "connecting"
    assert [name for name, _, state in jobs(core) if state == "todo"] == []
    done = settle(person, view.id)
    assert done.dialog_status == "connected"
    assert "The sync picks up where it stopped." in done.text
    waiting = [(task, args) for task, args, state in jobs(core) if state == "todo"]
    assert waiting == [
        (
            "sync_connection",
            {"connection_id": view.id, "trigger": "resume", "backfill_from": None},
        )
    ]
    # Polling the settled connection again queues nothing more.
    assert settle(person, view.id).dialog_status == "connected"
    assert web.queue.pending() == 1
    run_jobs(web)
    resumed = sync.sync_runs(core, admin, connection_id=view.id)[0]
    assert resumed.trigger == "resume"
    assert resumed.status is RunStatus.SUCCEEDED
    assert len(accounts.list_transactions(core, admin, limit=1000)) > before
    assert "needs you" not in person.get("/").alerts()


# --- settings -------------------------------------------------------------------------------------


def test_settings_credentials_usage_members_and_tokens(
    make_core: Callable[..., Core], engine_sandbox: SandboxServer
) -> None:
    # A server of its own, with a daily sync time that is not the default.
    server = WebServer(make_core(engine_sandbox, sync_time=dt.time(7, 45))).start()
    person = Browser(server)
    try:
        _settings_flow(server, person)
    finally:
        person.close()
        server.stop()


def _settings_flow(web: WebServer, person: Browser) -> None:
    core = web.core
    admin = new_admin(web, saved_credentials=False)
    person.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    page = person.get("/settings")
    assert "No Sophtron credentials yet." in page.text
    assert page.testid("requests-spent") == ["0"]
    assert "Every day at 07:45 UTC" in page.doc.text()

    # A malformed key: the reason names the Access Key; nothing saved, nothing spent.
    bad = person.post("/settings/credentials", {"user_id": USER_ID, "access_key": "not base64!"})
    assert bad.status == 422
    assert "Access Key" in bad.alerts()
    assert "not base64!" not in bad.text
    assert bad.form("/settings/credentials").one("input", name="user_id").attrs["value"] == USER_ID
    assert credentials.credentials_status(core, admin) is None
    assert quota.usage(core, admin.family_id) == 0
    empty = person.post("/settings/credentials", {"user_id": "", "access_key": ""})
    assert empty.status == 422
    assert "Enter the Sophtron User ID" in empty.alerts()

    saved = person.post("/settings/credentials", {"user_id": USER_ID, "access_key": ACCESS_KEY})
    assert saved.status == 303
    assert saved.location == "/settings#bank-sync"
    status = credentials.credentials_status(core, admin)
    assert status is not None
    assert status.customer_id
    page = person.get("/settings")
    assert f"Sophtron accepted the credentials (customer {status.customer_id})." in page.flashes()
    assert page.testid("sophtron-user") == [USER_ID]
    assert page.testid("sophtron-customer") == [status.customer_id]
    assert ACCESS_KEY not in page.text
    spent = quota.usage(core, admin.family_id)
    assert spent > 0
    assert page.testid("requests-spent") == [str(spent)]

    # Verify again with empty fields: the saved values are kept (and Sophtron asked again).
    core.clock.advance(seconds=120)
    again = person.post("/settings/credentials", {"user_id": "", "access_key": "", "base_url": ""})
    assert again.status == 303
    kept = credentials.credentials_status(core, admin)
    assert kept is not None
    assert (kept.user_id, kept.customer_id) == (USER_ID, status.customer_id)
    assert kept.verified_at == core.now()
    with core.session() as session:
        row = session.scalars(
            sa.select(ProviderCredentials).where(ProviderCredentials.family_id == admin.family_id)
        ).one()
        assert core.vault.decrypt_text(row.access_key_enc) == ACCESS_KEY
    assert quota.usage(core, admin.family_id) > spent
    page = person.get("/settings")
    assert page.testid("requests-spent") == [str(quota.usage(core, admin.family_id))]
    # Another user id with the saved key: Sophtron refuses the pair, the saved ones stay.
    other = person.post("/settings/credentials", {"user_id": OTHER_USER_ID, "access_key": ""})
    assert other.status == 422
    assert "rejected" in other.alerts()
    assert credentials.credentials_status(core, admin) == kept

    removed = person.post("/settings/credentials/remove")
    assert removed.status == 303
    assert credentials.credentials_status(core, admin) is None
    page = person.get("/settings")
    assert "The Sophtron credentials are removed." in page.flashes()
    assert "No Sophtron credentials yet." in page.text
    assert "/settings/credentials/remove" not in page.post_actions()
    assert person.post("/settings/credentials/remove").status == 404

    # People: add (with the reasons when refused), promote, and the last admin stays.
    for form, words in (
        ({"email": MEMBER_EMAIL, "password": "short", "role": "member"}, "at least 8 characters"),
        ({"email": "nope", "password": MEMBER_PASSWORD, "role": "member"}, "not an email"),
        ({"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD, "role": "owner"}, "admin or member"),
        ({"email": ADMIN_EMAIL, "password": MEMBER_PASSWORD, "role": "member"}, "exists already"),
    ):
        refused = person.post("/settings/members", form)
        assert refused.status in {409, 422}, form
        assert words in refused.doc.one("section", id="members").text(), form
        assert "short" not in refused.form("/settings/members").one(
            "input", name="password"
        ).attrs.get("value", "")
    assert [u.email for u in families.list_users(core, admin)] == [ADMIN_EMAIL]
    added = person.post(
        "/settings/members", {"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD, "role": "member"}
    )
    assert added.status == 303
    page = person.get("/settings")
    assert f"{MEMBER_EMAIL} can now log in as member." in page.flashes()
    kid = next(u for u in families.list_users(core, admin) if u.email == MEMBER_EMAIL)
    role_form = page.form(f"/settings/members/{kid.user_id}/role")
    assert role_form.one("select", name="role").find("option", selected="").attrs["value"] == (
        "member"
    )
    assert f"/settings/members/{admin.user_id}/role" not in page.post_actions()
    last = person.post(f"/settings/members/{admin.user_id}/role", {"role": "member"})
    assert last.status == 409
    assert "at least one admin" in last.doc.one("section", id="members").text()
    boss = person.post(f"/settings/members/{kid.user_id}/role", {"role": "boss"})
    assert boss.status == 422
    assert person.post(f"/settings/members/{kid.user_id}/role", {"role": "admin"}).status == 303
    assert "is now admin" in person.get("/settings").flashes()
    assert families.get_actor(core, kid.user_id).role is Role.ADMIN
    # Two admins: this one may step down, then the other is the last.
    assert person.post(f"/settings/members/{admin.user_id}/role", {"role": "member"}).status == 303
    assert families.get_actor(core, admin.user_id).role is Role.MEMBER
    assert person.post(f"/settings/members/{kid.user_id}/role", {"role": "member"}).status == 403

    # Tokens: shown once, usable as a bearer token, revoked.
    unnamed = person.post("/settings/tokens", {"name": "  "})
    assert unnamed.status == 422
    assert "Name the token" in unnamed.doc.one("section", id="tokens").text()
    created = person.post("/settings/tokens", {"name": "backup script"})
    assert created.status == 200
    (secret,) = created.testid("new-token")
    assert secret.startswith("sps_")
    bearer = {"Authorization": f"Bearer {secret}"}
    me = httpx.get(f"{web.url}/api/v1/me", headers=bearer, timeout=30)
    assert me.status_code == 200
    assert me.json()["email"] == ADMIN_EMAIL
    page = person.get("/settings")
    assert secret not in page.text
    assert page.testid("new-token") == []
    (made,) = tokens.list_tokens(core, admin)
    assert made.name == "backup script"
    assert secret[:10] in page.doc.one("section", id="tokens").text()
    assert person.post(f"/settings/tokens/{made.id}/revoke").status == 303
    assert tokens.list_tokens(core, admin) == []
    assert httpx.get(f"{web.url}/api/v1/me", headers=bearer, timeout=30).status_code == 401
    assert person.post(f"/settings/tokens/{made.id}/revoke").status == 404


# --- the REST API's new parameters ----------------------------------------------------------------


def test_api_searches_and_bounds_amounts(web: WebServer) -> None:
    admin = new_admin(web)
    view = synced(web, admin, "api+accounts=2+years=0.2")
    core = web.core
    token = tokens.create_token(core, admin, "api")[1]
    api = httpx.Client(
        base_url=f"{web.url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        event_hooks={"response": [_check]},
    )
    with api:
        everything = accounts.list_transactions(core, admin, limit=1000)
        merchant = next(t.merchant for t in everything if t.merchant)
        assert merchant is not None

        def listed(**params: Any) -> list[int]:
            response = api.get("/transactions", params={"limit": 1000, **params})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["next_cursor"] is None
            return [item["id"] for item in body["items"]]

        def core_ids(**wanted: Any) -> list[int]:
            return [t.id for t in accounts.list_transactions(core, admin, limit=1000, **wanted)]

        query = merchant[1:6].lower()
        found = listed(q=query)
        assert found
        assert found == core_ids(search=query)
        assert listed(q="zzz-nothing") == []
        assert listed(min_amount="100") == core_ids(min_amount=Decimal(100))
        assert listed(max_amount="12.5") == core_ids(max_amount=Decimal("12.5"))
        both = listed(min_amount="10", max_amount="10000", q=query)
        assert both == core_ids(search=query, min_amount=Decimal(10), max_amount=Decimal(10000))
        by_id = {t.id: t for t in everything}
        assert all(1000 <= abs(by_id[i].amount_minor) <= 1_000_000 for i in both)
        assert {by_id[i].amount_minor > 0 for i in listed(min_amount="0")} == {True, False}

        for params, field in (
            ({"min_amount": "-1"}, "min_amount"),
            ({"max_amount": "abc"}, "max_amount"),
            ({"min_amount": "NaN"}, "min_amount"),
            ({"max_amount": "Infinity"}, "max_amount"),
            ({"max_amount": str(10**13)}, "max_amount"),
            ({"min_amount": "20", "max_amount": "10"}, "min_amount"),
            ({"q": "x" * 201}, "q"),
        ):
            response = api.get("/transactions", params=params)
            assert response.status_code == 422, (params, response.text)
            assert response.json()["error"]["field"] == field, params

        (connection,) = api.get("/connections").json()
        assert connection["id"] == view.id
        assert connection["last_success_at"] is not None
        assert dt.datetime.fromisoformat(connection["last_success_at"]) == view.last_success_at
