"""The authorization matrix: every route of the app, for every kind of caller, answers the
status the docs promise, and a refused request changes nothing.

The routes are read from the app itself, so a route added without an entry in :data:`API` or
:data:`PAGES` fails :func:`test_the_matrix_names_every_route`: nobody can add an endpoint
without saying who may call it. The callers are an anonymous client, a member of the family, the
admin of *another* family and the family's admin; the ids in the paths are those of real
objects of the first family, so the other family's admin must get ``404`` (its ids do not exist
for them) and never ``403`` (which would tell them the object exists).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from sophsync.bridges import simplefin
from sophsync.core import accounts, connect, credentials, families, link, tokens
from sophsync.core.app import Core
from sophsync.core.families import Actor, Role
from sophsync.jobs import LocalQueue, Worker, defer_sync
from sophsync.sandbox import SandboxServer
from sophsync.store.models import Base
from sophsync.web import create_app
from tests.conftest import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_USER_ID, USER_ID
from tests.core.conftest import (  # noqa: F401 - fixtures shared with the core tests
    backend,
    clock,
    connect_and_link,
    database_url,
    engine_sandbox,
    institution_id,
    make_core,
    postgres_url,
)
from tests.web.conftest import (  # noqa: F401 - the web fixture, requested here
    WebServer,
    reaching_sophtron,
    routes_of,
    web,
)

NOMFA = "Sophtron Bank NoMFA"
ADMIN_PASSWORD = "correct horse battery"

#: The callers, in the order of the statuses of :data:`API`.
CALLERS = ("anonymous", "member", "other admin", "admin")

#: (method, route) -> (path with ``{ids}``, JSON body or None, statuses for :data:`CALLERS`).
#: The order is the order in which the admin's requests run: those that remove what later
#: requests need come last.
API: dict[tuple[str, str], tuple[str, Any, tuple[int, int, int, int]]] = {
    ("GET", "/healthz"): ("/healthz", None, (200, 200, 200, 200)),
    ("GET", "/readyz"): ("/readyz", None, (200, 200, 200, 200)),
    ("GET", "/metrics"): ("/metrics", None, (200, 200, 200, 200)),
    # Set up once: after the first run it is refused to everybody alike.
    ("POST", "/api/v1/setup"): (
        "/api/v1/setup",
        {"family": "Intruders", "email": "new@example.com", "password": "long enough"},
        (409, 409, 409, 409),
    ),
    # Logging in is for anyone with the password; a wrong one is refused to everyone alike
    # (``422 bad_login``, as docs/api.md lists it).
    ("POST", "/api/v1/session"): (
        "/api/v1/session",
        {"email": "admin@example.com", "password": "not the password"},
        (422, 422, 422, 422),
    ),
    ("GET", "/api/v1/me"): ("/api/v1/me", None, (401, 200, 200, 200)),
    ("GET", "/api/v1/users"): ("/api/v1/users", None, (401, 200, 200, 200)),
    ("POST", "/api/v1/users"): (
        "/api/v1/users",
        {"email": "added-{n}@example.com", "password": "long enough", "role": "member"},
        (401, 403, 201, 201),
    ),
    ("PATCH", "/api/v1/users/{user_id}"): (
        "/api/v1/users/{member_user}",
        {"role": "member"},
        (401, 403, 404, 200),
    ),
    ("GET", "/api/v1/tokens"): ("/api/v1/tokens", None, (401, 200, 200, 200)),
    ("POST", "/api/v1/tokens"): ("/api/v1/tokens", {"name": "more"}, (401, 201, 201, 201)),
    ("GET", "/api/v1/credentials"): ("/api/v1/credentials", None, (401, 200, 404, 200)),
    ("PUT", "/api/v1/credentials"): (
        "/api/v1/credentials",
        {"user_id": "{user_id}", "access_key": "{access_key}"},
        (401, 403, 200, 200),
    ),
    ("GET", "/api/v1/institutions"): (
        "/api/v1/institutions?q=Sophtron",
        None,
        (401, 200, 200, 200),
    ),
    ("GET", "/api/v1/connections"): ("/api/v1/connections", None, (401, 200, 200, 200)),
    ("POST", "/api/v1/connections"): (
        "/api/v1/connections",
        {"institution_id": "{nomfa}", "username": "stuck-never-finishes", "password": "pw"},
        (401, 403, 201, 201),
    ),
    ("GET", "/api/v1/connections/{connection_id}"): (
        "/api/v1/connections/{cid}",
        None,
        (401, 200, 404, 200),
    ),
    ("POST", "/api/v1/connections/{connection_id}/poll"): (
        "/api/v1/connections/{stuck}/poll",
        None,
        (401, 403, 404, 200),
    ),
    # No prompt is pending: the admin is let through and told so.
    ("POST", "/api/v1/connections/{connection_id}/answer"): (
        "/api/v1/connections/{cid}/answer",
        {"answer": "K7QX2"},
        (401, 403, 404, 409),
    ),
    ("POST", "/api/v1/connections/{connection_id}/check-again"): (
        "/api/v1/connections/{stuck}/check-again",
        None,
        (401, 403, 404, 200),
    ),
    ("POST", "/api/v1/connections/{connection_id}/retry"): (
        "/api/v1/connections/{cid}/retry",
        None,
        (401, 403, 404, 200),
    ),
    ("GET", "/api/v1/provider-accounts"): (
        "/api/v1/provider-accounts?connection_id={cid}",
        None,
        (401, 200, 200, 200),
    ),
    ("POST", "/api/v1/links"): (
        "/api/v1/links",
        {"provider_account_id": "{free}", "account_id": "{unlinked}"},
        (401, 403, 404, 201),
    ),
    ("GET", "/api/v1/accounts"): ("/api/v1/accounts", None, (401, 200, 200, 200)),
    ("PATCH", "/api/v1/accounts/{account_id}"): (
        "/api/v1/accounts/{account}",
        {"name": "Renamed"},
        (401, 403, 404, 200),
    ),
    ("GET", "/api/v1/transactions"): (
        "/api/v1/transactions?account_id={account}",
        None,
        (401, 200, 404, 200),
    ),
    ("GET", "/api/v1/sync-runs"): (
        "/api/v1/sync-runs?connection_id={cid}",
        None,
        (401, 200, 200, 200),
    ),
    ("POST", "/api/v1/sync"): ("/api/v1/sync", {"connection_id": "{cid}"}, (401, 403, 404, 202)),
    ("PUT", "/api/v1/connections/{connection_id}/login"): (
        "/api/v1/connections/{cid}/login",
        {"username": "someone-else", "password": "pw"},
        (401, 403, 404, 200),
    ),
    ("DELETE", "/api/v1/transactions/{transaction_id}"): (
        "/api/v1/transactions/{transaction}",
        None,
        (401, 403, 404, 204),
    ),
    ("POST", "/api/v1/accounts/{account_id}/unlink"): (
        "/api/v1/accounts/{account}/unlink",
        None,
        (401, 403, 404, 200),
    ),
    # Tokens are personal: another user's token id does not exist for anyone else.
    ("DELETE", "/api/v1/tokens/{token_id}"): (
        "/api/v1/tokens/{token}",
        None,
        (401, 404, 404, 204),
    ),
    ("DELETE", "/api/v1/connections/{connection_id}"): (
        "/api/v1/connections/{cid}",
        None,
        (401, 403, 404, 204),
    ),
    ("DELETE", "/api/v1/credentials"): ("/api/v1/credentials", None, (401, 403, 204, 204)),
    # SimpleFIN clients authenticate with the access URL's Basic credentials only: a session or
    # an API token of sophsync is no SimpleFIN credential. The protocol answers a missing or
    # wrong access with 403.
    ("GET", "/simplefin/info"): ("/simplefin/info", None, (200, 200, 200, 200)),
    ("GET", "/simplefin/access/info"): ("/simplefin/access/info", None, (200, 200, 200, 200)),
    ("GET", "/simplefin/access/accounts"): (
        "/simplefin/access/accounts",
        None,
        (403, 403, 403, 403),
    ),
    ("POST", "/simplefin/claim/{token}"): (
        "/simplefin/claim/not-a-setup-token",
        None,
        (403, 403, 403, 403),
    ),
    # Logging out ends the caller's own session; with a token there is none: nothing happens.
    ("DELETE", "/api/v1/session"): ("/api/v1/session", None, (204, 204, 204, 204)),
}

#: Page routes -> (path, what an anonymous visitor gets). Members and admins of the pages are
#: covered in tests/web/test_pages.py; here every page must refuse a stranger and change nothing.
PAGES: dict[tuple[str, str], tuple[str, int]] = {
    ("GET", "/favicon.ico"): ("/favicon.ico", 303),
    ("GET", "/setup"): ("/setup", 303),
    ("POST", "/setup"): ("/setup", 403),
    ("GET", "/login"): ("/login", 200),
    ("POST", "/login"): ("/login", 403),
    ("POST", "/logout"): ("/logout", 403),
    ("GET", "/"): ("/", 303),
    ("GET", "/transactions"): ("/transactions", 303),
    ("GET", "/accounts/{account_id}"): ("/accounts/{account}", 303),
    ("POST", "/accounts/{account_id}"): ("/accounts/{account}", 403),
    ("POST", "/accounts/{account_id}/link"): ("/accounts/{unlinked}/link", 403),
    ("POST", "/accounts/{account_id}/unlink"): ("/accounts/{account}/unlink", 403),
    ("GET", "/runs"): ("/runs", 303),
    ("POST", "/sync"): ("/sync", 403),
    ("GET", "/connect"): ("/connect", 303),
    ("GET", "/connect/institutions"): ("/connect/institutions?q=Sophtron", 303),
    ("GET", "/connect/login"): ("/connect/login?institution_id={nomfa}", 303),
    ("POST", "/connect"): ("/connect", 403),
    ("GET", "/connections/{connection_id}"): ("/connections/{cid}", 303),
    ("GET", "/connections/{connection_id}/dialog"): ("/connections/{cid}/dialog", 303),
    ("POST", "/connections/{connection_id}/poll"): ("/connections/{stuck}/poll", 403),
    ("POST", "/connections/{connection_id}/answer"): ("/connections/{cid}/answer", 403),
    ("POST", "/connections/{connection_id}/check-again"): (
        "/connections/{stuck}/check-again",
        403,
    ),
    ("POST", "/connections/{connection_id}/retry"): ("/connections/{cid}/retry", 403),
    ("POST", "/connections/{connection_id}/login"): ("/connections/{cid}/login", 403),
    ("POST", "/connections/{connection_id}/sync"): ("/connections/{cid}/sync", 403),
    ("POST", "/connections/{connection_id}/remove"): ("/connections/{cid}/remove", 403),
    ("GET", "/connections/{connection_id}/link"): ("/connections/{cid}/link", 303),
    ("POST", "/connections/{connection_id}/link"): ("/connections/{cid}/link", 403),
    ("GET", "/settings"): ("/settings", 303),
    ("POST", "/settings/credentials"): ("/settings/credentials", 403),
    ("POST", "/settings/credentials/remove"): ("/settings/credentials/remove", 403),
    ("POST", "/settings/members"): ("/settings/members", 403),
    ("POST", "/settings/members/{user_id}/role"): ("/settings/members/{member_user}/role", 403),
    ("POST", "/settings/tokens"): ("/settings/tokens", 403),
    ("POST", "/settings/tokens/{token_id}/revoke"): ("/settings/tokens/{token}/revoke", 403),
    ("POST", "/settings/simplefin"): ("/settings/simplefin", 403),
    ("POST", "/settings/simplefin/{access_id}/revoke"): (
        "/settings/simplefin/{simplefin}/revoke",
        403,
    ),
}

#: Served by the framework (the OpenAPI description, its viewers) and static files: public.
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app routes, routers included, HEAD left out (it follows GET)."""
    found: set[tuple[str, str]] = set()
    for route in routes_of(list(app.routes)):
        if isinstance(route, APIRoute):
            found.update((method, route.path) for method in route.methods)
        elif getattr(route, "path", None) not in FRAMEWORK:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found


def test_the_matrix_names_every_route(web: WebServer) -> None:  # noqa: F811
    routed = app_routes(create_app(web.core, queue=LocalQueue(web.core)))
    named = set(API) | set(PAGES)
    assert routed - named == set(), "routes without an entry in the authorization matrix"
    assert named - routed == set(), "entries of the authorization matrix that route nowhere"
    assert set(API).isdisjoint(PAGES)


# --- the first family, with one of everything -----------------------------------------------


@dataclass
class World:
    web: WebServer
    ids: dict[str, Any]
    tokens: dict[str, str]

    def fill(self, value: Any, n: int) -> Any:
        """``value`` with its ``{names}`` replaced by the ids (numbers stay numbers)."""
        if isinstance(value, str):
            if value.startswith("{") and value.endswith("}") and value[1:-1] in self.ids:
                return self.ids[value[1:-1]]
            return value.format(**self.ids, n=n)
        if isinstance(value, dict):
            return {key: self.fill(item, n) for key, item in value.items()}
        return value


def snapshot(core: Core) -> dict[str, list[str]]:
    """Every row of every table, but the last use of tokens and accesses (a refused call may
    note that a valid token was used)."""
    skip = {"last_used_at"}
    with core.session() as session:
        return {
            table.name: sorted(
                repr(
                    tuple(v for c, v in zip(table.columns, row, strict=True) if c.name not in skip)
                )
                for row in session.execute(sa.select(table))
            )
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
def world(web: WebServer) -> World:  # noqa: F811
    core = web.core
    admin = families.create_family(core, "The Smiths", "admin@example.com", ADMIN_PASSWORD)
    credentials.save_credentials(core, admin, USER_ID, ACCESS_KEY)
    view = connect_and_link(core, admin, username="smiths+accounts=2+years=0.2")
    linked, unlinked = (a.id for a in accounts.list_accounts(core, admin))
    link.unlink(core, admin, unlinked)
    assert defer_sync(web.queue, view.id, trigger="manual") is not None
    Worker(core, web.queue).run_until_idle()
    free = next(
        p.id for p in link.provider_accounts(core, admin, view.id) if p.linked_account_id is None
    )
    stuck = connect.start_connection(
        core, admin, institution_id(core, admin, NOMFA), "stuck-never-finishes", "pw"
    )
    transaction = accounts.list_transactions(core, admin, account_id=linked, limit=1)
    member = families.add_user(core, admin, "kid@example.com", "another password", Role.MEMBER)
    other = families.create_family(core, "The Joneses", "jones@example.com", ADMIN_PASSWORD)
    kept, _ = tokens.create_token(core, admin, "to revoke")
    bridge = simplefin.create_setup_token(core, admin, web.url, "budget app")
    ids = {
        "cid": view.id,
        "stuck": stuck.id,
        "account": linked,
        "unlinked": unlinked,
        "free": free,
        "transaction": _first_id(transaction),
        "member_user": member.user_id,
        "token": kept.id,
        "simplefin": bridge.access.id,
        "nomfa": institution_id(core, admin, NOMFA),
        "user_id": USER_ID,
        "access_key": ACCESS_KEY,
    }
    secrets = {
        "member": tokens.create_token(core, member, "kid")[1],
        "other admin": tokens.create_token(core, other, "jones")[1],
        "admin": tokens.create_token(core, admin, "admin")[1],
    }
    return World(web, ids, secrets)


def _first_id(page: Any) -> int:
    items = getattr(page, "items", page)
    return int(items[0].id)


def _actors(server: WebServer) -> dict[str, Actor]:
    return {a.email: a for f in families.families(server.core) for a in _users(server, f.id)}


def _users(server: WebServer, family_id: int) -> list[Actor]:
    return families.list_users(server.core, families.family_admin(server.core, family_id))


def _send(
    client: httpx.Client, world: World, caller: str, method: str, path: str, body: Any, n: int
) -> httpx.Response:
    headers = {}
    if caller != "anonymous":
        headers["Authorization"] = f"Bearer {world.tokens[caller]}"
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = world.fill(body, n)
    return client.request(method, world.fill(path, n), **kwargs)


def _check_error_body(response: httpx.Response) -> None:
    """Every refusal of the API says what went wrong in the documented shape."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and not response.url.path.startswith("/simplefin/"):
        body = response.json()
        assert set(body) == {"error"}, body
        assert body["error"]["code"], body
        assert body["error"]["message"], body


def test_every_api_route_for_every_caller(world: World) -> None:
    """Refusals first (each must leave every table as it was), then the admin's own calls in
    the order of the table, each with the status the docs give it."""
    server = world.web
    seen: dict[tuple[str, str], list[int]] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n, (route, (path, body, _)) in enumerate(API.items()):
            for caller in CALLERS[:3]:
                before = snapshot(server.core)
                response = _send(client, world, caller, route[0], path, body, n)
                seen.setdefault(route, []).append(response.status_code)
                _check_error_body(response)
                if response.status_code >= 400:
                    assert snapshot(server.core) == before, (caller, route, response.text)
                if caller == "other admin" and response.status_code == 404:
                    # Nothing of the first family shows in the refusal.
                    for word in ("Smiths", "admin@example.com", "kid@example.com"):
                        assert word not in response.text, (route, response.text)
        for n, (route, (path, body, _)) in enumerate(API.items()):
            response = _send(client, world, "admin", route[0], path, body, n + len(API))
            _check_error_body(response)
            seen[route].append(response.status_code)
    expected = {route: list(statuses) for route, (_, _, statuses) in API.items()}
    wrong = {
        f"{m} {p}": f"got {seen[(m, p)]}, want {expected[(m, p)]}"
        for (m, p) in API
        if seen[(m, p)] != expected[(m, p)]
    }
    assert not wrong, json.dumps(wrong, indent=1)


def test_every_page_refuses_a_stranger_and_changes_nothing(world: World) -> None:
    server = world.web
    before = snapshot(server.core)
    wrong = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n, ((method, _), (path, expected)) in enumerate(PAGES.items()):
            response = client.request(method, world.fill(path, n), data={"x": "1"})
            assert response.status_code < 500, response.text
            if response.status_code != expected:
                wrong[f"{method} {path}"] = response.status_code
            if response.status_code == 303 and path != "/favicon.ico":
                assert response.headers["location"].startswith(("/login", "/setup")), path
    assert not wrong, wrong
    assert snapshot(server.core) == before
    # The pages' own text never shows the family's data to a stranger.
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=True) as client:
        page = client.get(world.fill("/accounts/{account}", 0))
        assert page.status_code == 200
        assert "Smiths" not in page.text
        assert "Primary Checking" not in page.text


def test_every_api_route_that_reaches_sophtron_waits_on_its_own_threads(
    world: World,
    engine_sandbox: SandboxServer,  # noqa: F811
) -> None:
    """The admin's calls of the matrix, in turn: a route during which Sophtron was asked
    something must run on the threads of those that wait on it (sophsync.web.threads), not hold
    one of the few database threads while it waits."""
    server = world.web
    with httpx.Client(base_url=server.url, timeout=30) as client:
        calls = [
            (
                method,
                world.fill(path, n),
                functools.partial(_send, client, world, "admin", method, path, body, n),
            )
            for n, ((method, _), (path, body, _)) in enumerate(API.items())
        ]
        found = reaching_sophtron(server.app, engine_sandbox, calls)
    unmarked = [route for route, is_marked in found.items() if not is_marked]
    assert not unmarked, f"routes that wait on Sophtron on the database threads: {unmarked}"
    # The search, the credentials' check, the login, its polls, retry, new login and removal.
    assert len(found) >= 7, found


def test_a_simplefin_access_reads_only_its_own_family(world: World) -> None:
    """Basic credentials of one family's access never reach another family's accounts."""
    server = world.web
    jones = _actors(server)["jones@example.com"]
    credentials.save_credentials(server.core, jones, OTHER_USER_ID, OTHER_ACCESS_KEY)
    connect_and_link(server.core, jones, username="joneses+accounts=1")
    smiths = _actors(server)["admin@example.com"]
    seen: dict[str, set[str]] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for actor in (smiths, jones):
            setup = simplefin.create_setup_token(server.core, actor, server.url, "bridge")
            claimed = client.post(setup.claim_url.removeprefix(server.url))
            assert claimed.status_code == 200, claimed.text
            parts = httpx.URL(claimed.text)
            got = client.get("/simplefin/access/accounts", auth=(parts.username, parts.password))
            assert got.status_code == 200, got.text
            seen[actor.email] = {a["id"] for a in got.json()["accounts"]}
            wrong = client.get("/simplefin/access/accounts", auth=(parts.username, "x" * 43))
            assert wrong.status_code == 403
    mine = {str(a.id) for a in accounts.list_accounts(server.core, smiths)}
    assert seen["admin@example.com"]
    assert seen["jones@example.com"]
    assert seen["admin@example.com"].isdisjoint(seen["jones@example.com"])
    assert len(seen["admin@example.com"]) == len(mine)
