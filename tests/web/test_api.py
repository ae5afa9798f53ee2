"""The REST API over HTTP, on SQLite and PostgreSQL: every endpoint, its failures, roles,
family isolation and the cross-site check.

Every response passes through :func:`_check`: no 5xx, and every error has the shape
``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sophsync.core import families
from sophsync.jobs import Worker
from sophsync.store import head_revision
from tests.conftest import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_USER_ID, TODAY, USER_ID
from tests.core.conftest import ANSWERS
from tests.web.conftest import WebServer

API = "/api/v1"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
MEMBER_EMAIL = "kid@example.com"
MEMBER_PASSWORD = "another password"
MONEY = re.compile(r"-?\d+\.\d{2}")
PNG = b"\x89PNG\r\n\x1a\n"

#: Every path of the API (as the OpenAPI description spells them).
API_PATHS = {
    f"{API}/setup",
    f"{API}/session",
    f"{API}/me",
    f"{API}/users",
    f"{API}/users/{{user_id}}",
    f"{API}/tokens",
    f"{API}/tokens/{{token_id}}",
    f"{API}/credentials",
    f"{API}/institutions",
    f"{API}/connections",
    f"{API}/connections/{{connection_id}}",
    f"{API}/connections/{{connection_id}}/poll",
    f"{API}/connections/{{connection_id}}/answer",
    f"{API}/connections/{{connection_id}}/check-again",
    f"{API}/connections/{{connection_id}}/retry",
    f"{API}/connections/{{connection_id}}/login",
    f"{API}/provider-accounts",
    f"{API}/links",
    f"{API}/accounts",
    f"{API}/accounts/{{account_id}}",
    f"{API}/accounts/{{account_id}}/unlink",
    f"{API}/transactions",
    f"{API}/transactions/{{transaction_id}}",
    f"{API}/sync-runs",
    f"{API}/sync",
}


# --- helpers ------------------------------------------------------------------------------------


def _check(response: httpx.Response) -> None:
    """No request may fail with a server error; every error body has the documented shape."""
    response.read()
    request = response.request
    assert response.status_code < 500, (
        f"{request.method} {request.url} answered {response.status_code}: {response.text}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "field"}, body
        assert isinstance(body["error"]["code"], str)
        assert body["error"]["code"]
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]
        assert body["error"]["field"] is None or isinstance(body["error"]["field"], str)


def error(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@pytest.fixture
def browser(web: WebServer) -> Iterator[Callable[..., httpx.Client]]:
    """Clients of the web app (closed after the test), each with its own cookies."""
    opened: list[httpx.Client] = []

    def open_client(**kwargs: Any) -> httpx.Client:
        client = web.client(event_hooks={"response": [_check]}, **kwargs)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def set_up(client: httpx.Client, *, credentials: bool = True) -> dict[str, Any]:
    """First run over HTTP: the family, its admin (logged in) and the Sophtron credentials."""
    user = ok(
        client.post(
            f"{API}/setup",
            json={"family": "The Smiths", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        ),
        201,
    )
    if credentials:
        ok(client.put(f"{API}/credentials", json={"user_id": USER_ID, "access_key": ACCESS_KEY}))
    return dict(user)


def log_in(client: httpx.Client, email: str, password: str) -> dict[str, Any]:
    return dict(ok(client.post(f"{API}/session", json={"email": email, "password": password})))


def institution(client: httpx.Client, name: str) -> str:
    found = ok(client.get(f"{API}/institutions", params={"q": name}))
    return str(next(item["institution_id"] for item in found if item["name"] == name))


def start(
    client: httpx.Client, username: str, password: str = "bank-password", bank: str = ""
) -> dict[str, Any]:
    bank = bank or "Sophtron Bank NoMFA"
    created = ok(
        client.post(
            f"{API}/connections",
            json={
                "institution_id": institution(client, bank),
                "username": username,
                "password": password,
            },
        ),
        201,
    )
    assert created["status"] == "connecting"
    assert created["institution_name"] == bank
    return dict(created)


def settle(client: httpx.Client, connection_id: int) -> dict[str, Any]:
    """Poll until the connection is no longer connecting."""
    for _ in range(100):
        view = ok(client.post(f"{API}/connections/{connection_id}/poll"))
        if view["status"] != "connecting":
            return dict(view)
    raise AssertionError(f"connection {connection_id} kept connecting: {view}")


def connect(client: httpx.Client, username: str) -> dict[str, Any]:
    view = settle(client, start(client, username)["id"])
    assert view["status"] == "connected", view
    return view


def link_all(client: httpx.Client, connection_id: int, history_days: int = 60) -> list[int]:
    providers = ok(client.get(f"{API}/provider-accounts", params={"connection_id": connection_id}))
    return [
        ok(
            client.post(
                f"{API}/links",
                json={"provider_account_id": p["id"], "history_days": history_days},
            ),
            201,
        )["id"]
        for p in providers
    ]


def run_jobs(web: WebServer) -> None:
    Worker(web.core, web.queue).run_until_idle()


def synced(web: WebServer, client: httpx.Client, username: str) -> dict[str, Any]:
    """A connected, linked and synced login."""
    view = connect(client, username)
    link_all(client, view["id"])
    queued = ok(client.post(f"{API}/sync", json={"connection_id": view["id"]}), 202)
    assert queued == {"queued": [view["id"]], "already_queued": []}
    run_jobs(web)
    return view


def all_transactions(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    page = ok(client.get(f"{API}/transactions", params={"limit": 1000, **params}))
    assert page["next_cursor"] is None
    return list(page["items"])


# --- health, readiness, metrics, OpenAPI ----------------------------------------------------------


def test_health_readiness_metrics_and_openapi(
    web: WebServer, browser: Callable[..., httpx.Client]
) -> None:
    client = browser()
    assert ok(client.get("/healthz"))["status"] == "ok"
    ready = ok(client.get("/readyz"))
    assert ready["status"] == "ok"
    assert ready["details"]["revision"] == head_revision()
    assert ready["details"]["head"] == head_revision()

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in ("sophsync_sync_runs", "sophsync_sophtron_requests", "sophsync_queue_depth"):
        assert f"# TYPE {name} gauge" in text
    assert 'sophsync_sync_runs{status="succeeded"} 0.0' in text
    assert "sophsync_queue_depth 0.0" in text

    spec = ok(client.get("/openapi.json"))
    documented = {path for path in spec["paths"] if path.startswith(API)}
    routed = {
        path for route in web.app.routes if (path := getattr(route, "path", "")).startswith(API)
    }
    assert documented == API_PATHS
    assert routed == API_PATHS

    error(client.get(f"{API}/nothing-here"), 404, "not_found")
    error(client.put("/healthz"), 405, "method_not_allowed")
    # Nothing is set up yet: every API read needs a login.
    for path in ("/me", "/users", "/connections", "/accounts", "/transactions", "/sync-runs"):
        error(client.get(f"{API}{path}"), 401, "unauthenticated")


def test_metrics_count_runs_requests_and_queue(
    web: WebServer, browser: Callable[..., httpx.Client]
) -> None:
    client = browser()
    set_up(client)
    view = connect(client, "metrics+accounts=1")
    link_all(client, view["id"])
    ok(client.post(f"{API}/sync", json={}), 202)
    waiting = client.get("/metrics").text
    assert "sophsync_queue_depth 1.0" in waiting
    run_jobs(web)
    text = client.get("/metrics").text
    assert 'sophsync_sync_runs{status="succeeded"} 1.0' in text
    assert "sophsync_queue_depth 0.0" in text
    spent = re.search(r"^sophsync_sophtron_requests (\S+)$", text, re.MULTILINE)
    assert spent is not None
    runs = ok(client.get(f"{API}/sync-runs"))
    assert float(spent.group(1)) == sum(run["requests"] for run in runs) > 0


# --- setup, session, me ---------------------------------------------------------------------------


def test_text_holding_a_nul_character_is_refused_naming_its_field(
    browser: Callable[..., httpx.Client],
) -> None:
    """PostgreSQL stores no NUL character, and no name, address or search has one: such text
    is refused before any query, with its field named (not a server error on PostgreSQL)."""
    client = browser()
    good = {"family": "The Smiths", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    for field in ("family", "email"):
        refused = client.post(f"{API}/setup", json={**good, field: "a\x00b@example.com"})
        error(refused, 422, "bad_input", field)
        assert "NUL" in refused.json()["error"]["message"]
    ok(client.post(f"{API}/setup", json=good), 201)
    with_nul = {"email": "admin\x00@example.com", "password": ADMIN_PASSWORD}
    error(client.post(f"{API}/session", json=with_nul), 422, "bad_input", "email")
    error(client.get(f"{API}/transactions", params={"q": "coffee\x00"}), 422, "bad_input", "q")
    error(client.get(f"{API}/institutions", params={"q": "So\x00"}), 422, "bad_input", "q")
    answers = {"answer": ["first", "sec\x00ond"]}
    error(client.post(f"{API}/connections/1/answer", json=answers), 422, "bad_input", "answer")
    new = {"email": "member\x00@example.com", "password": ADMIN_PASSWORD}
    error(client.post(f"{API}/users", json=new), 422, "bad_input", "email")
    assert ok(client.get(f"{API}/me"))["email"] == ADMIN_EMAIL  # nothing else changed
    assert len(ok(client.get(f"{API}/users"))) == 1


def test_setup_login_logout_and_me(browser: Callable[..., httpx.Client]) -> None:
    client = browser()
    error(client.get(f"{API}/me"), 401, "unauthenticated")
    good = {"family": "The Smiths", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    error(
        client.post(f"{API}/setup", json={**good, "email": "not-an-email"}),
        422,
        "bad_input",
        "email",
    )
    error(
        client.post(f"{API}/setup", json={**good, "password": "short"}),
        422,
        "bad_input",
        "password",
    )
    error(client.post(f"{API}/setup", json={**good, "family": ""}), 422, "bad_input", "family")
    error(client.post(f"{API}/setup", json={"family": "x"}), 422, "bad_input", "email")
    error(client.get(f"{API}/me"), 401, "unauthenticated")  # nothing was created

    user = ok(client.post(f"{API}/setup", json=good), 201)
    assert user["email"] == ADMIN_EMAIL
    assert user["role"] == "admin"
    assert "sophsync_session" in client.cookies
    assert ok(client.get(f"{API}/me")) == user

    again = {"family": "Others", "email": "other@example.com", "password": ADMIN_PASSWORD}
    error(client.post(f"{API}/setup", json=again), 409, "set_up_already")
    error(browser().post(f"{API}/setup", json=again), 409, "set_up_already")

    assert client.delete(f"{API}/session").status_code == 204
    error(client.get(f"{API}/me"), 401, "unauthenticated")

    wrong = {"email": ADMIN_EMAIL, "password": "not the password"}
    error(client.post(f"{API}/session", json=wrong), 422, "bad_login", "password")
    unknown = {"email": "nobody@example.com", "password": ADMIN_PASSWORD}
    error(client.post(f"{API}/session", json=unknown), 422, "bad_login", "password")
    error(client.post(f"{API}/session", json={"email": ADMIN_EMAIL}), 422, "bad_input", "password")
    error(client.get(f"{API}/me"), 401, "unauthenticated")

    assert log_in(client, "  Admin@Example.com ", ADMIN_PASSWORD) == user
    assert ok(client.get(f"{API}/me")) == user
    # A forged cookie is no session.
    forged = browser(cookies={"sophsync_session": "forged"})
    error(forged.get(f"{API}/me"), 401, "unauthenticated")


# --- users and roles ------------------------------------------------------------------------------


def test_users_and_roles(browser: Callable[..., httpx.Client]) -> None:
    client = browser()
    me = set_up(client, credentials=False)
    assert ok(client.get(f"{API}/users")) == [me]

    new = {"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD}
    member = ok(client.post(f"{API}/users", json=new), 201)
    assert member["role"] == "member"
    assert member["family_id"] == me["family_id"]
    error(client.post(f"{API}/users", json=new), 409, "email_taken")
    error(client.post(f"{API}/users", json={**new, "email": ADMIN_EMAIL}), 409, "email_taken")
    error(client.post(f"{API}/users", json={**new, "email": "x@"}), 422, "bad_input", "email")
    short = {"email": "a@example.com", "password": "1234"}
    error(client.post(f"{API}/users", json=short), 422, "bad_input", "password")
    bad_role = {"email": "b@example.com", "password": MEMBER_PASSWORD, "role": "owner"}
    error(client.post(f"{API}/users", json=bad_role), 422, "bad_input", "role")
    assert [u["email"] for u in ok(client.get(f"{API}/users"))] == [ADMIN_EMAIL, MEMBER_EMAIL]

    kid = browser()
    assert log_in(kid, MEMBER_EMAIL, MEMBER_PASSWORD) == member
    assert ok(kid.get(f"{API}/users")) == ok(client.get(f"{API}/users"))
    third = {"email": "third@example.com", "password": MEMBER_PASSWORD}
    error(kid.post(f"{API}/users", json=third), 403, "forbidden")
    error(kid.patch(f"{API}/users/{member['id']}", json={"role": "admin"}), 403, "forbidden")
    error(kid.patch(f"{API}/users/{me['id']}", json={"role": "member"}), 403, "forbidden")

    error(client.patch(f"{API}/users/{me['id']}", json={"role": "member"}), 409, "last_admin")
    error(client.patch(f"{API}/users/999999", json={"role": "admin"}), 404, "not_found")
    error(
        client.patch(f"{API}/users/{member['id']}", json={"role": "boss"}), 422, "bad_input", "role"
    )
    promoted = ok(client.patch(f"{API}/users/{member['id']}", json={"role": "admin"}))
    assert promoted["role"] == "admin"
    # The promotion applies to the member's session at once.
    assert ok(kid.get(f"{API}/me"))["role"] == "admin"
    assert ok(kid.post(f"{API}/users", json=third), 201)["role"] == "member"
    # Two admins: one may step down, then the other is the last.
    assert ok(client.patch(f"{API}/users/{me['id']}", json={"role": "member"}))["role"] == "member"
    error(kid.patch(f"{API}/users/{member['id']}", json={"role": "member"}), 409, "last_admin")
    error(client.post(f"{API}/users", json={**third, "email": "4@example.com"}), 403, "forbidden")


# --- tokens ---------------------------------------------------------------------------------------


def test_personal_access_tokens(browser: Callable[..., httpx.Client]) -> None:
    client = browser()
    me = set_up(client, credentials=False)
    assert ok(client.get(f"{API}/tokens")) == []
    error(client.post(f"{API}/tokens", json={"name": "  "}), 422, "bad_input", "name")
    error(client.post(f"{API}/tokens", json={"name": "x" * 101}), 422, "bad_input", "name")
    error(client.post(f"{API}/tokens", json={}), 422, "bad_input", "name")

    created = ok(client.post(f"{API}/tokens", json={"name": "laptop"}), 201)
    token = created["token"]
    assert token.startswith("sps_")
    assert len(token) > 20
    assert created["name"] == "laptop"
    assert token.startswith(created["prefix"])
    assert created["last_used_at"] is None

    listed = ok(client.get(f"{API}/tokens"))
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert token not in client.get(f"{API}/tokens").text

    bearer = browser(headers={"Authorization": f"Bearer {token}"})
    assert ok(bearer.get(f"{API}/me")) == me
    assert "sophsync_session" not in bearer.cookies
    assert ok(client.get(f"{API}/tokens"))[0]["last_used_at"] is not None
    # A token acts as its user: it can make a token of its own.
    second = ok(bearer.post(f"{API}/tokens", json={"name": "script"}), 201)
    assert second["token"] != token

    # Another user's token is not yours to revoke.
    ok(client.post(f"{API}/users", json={"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD}), 201)
    kid = browser()
    log_in(kid, MEMBER_EMAIL, MEMBER_PASSWORD)
    assert ok(kid.get(f"{API}/tokens")) == []
    error(kid.delete(f"{API}/tokens/{created['id']}"), 404, "not_found")
    kids = ok(kid.post(f"{API}/tokens", json={"name": "kid"}), 201)
    error(client.delete(f"{API}/tokens/{kids['id']}"), 404, "not_found")

    assert client.delete(f"{API}/tokens/{created['id']}").status_code == 204
    error(client.delete(f"{API}/tokens/{created['id']}"), 404, "not_found")
    error(bearer.get(f"{API}/me"), 401, "unauthenticated")
    assert [t["id"] for t in ok(client.get(f"{API}/tokens"))] == [second["id"]]
    for text in ("sps_unknown", "garbage", "sps_"):
        unknown = browser(headers={"Authorization": f"Bearer {text}"})
        error(unknown.get(f"{API}/me"), 401, "unauthenticated")
    # A bad token is refused even next to a valid session cookie.
    error(client.get(f"{API}/me", headers={"Authorization": "Bearer sps_nope"}), 401)


# --- credentials and institutions -----------------------------------------------------------------


def test_credentials_and_institutions(browser: Callable[..., httpx.Client]) -> None:
    client = browser()
    set_up(client, credentials=False)
    error(client.get(f"{API}/credentials"), 404, "no_credentials")
    error(client.get(f"{API}/institutions", params={"q": "Sophtron"}), 409, "no_credentials")

    put = f"{API}/credentials"
    error(
        client.put(put, json={"user_id": USER_ID, "access_key": "not base64!"}),
        422,
        None,
        "access_key",
    )
    wrong_key = base64.b64encode(b"some other secret key").decode()
    error(
        client.put(put, json={"user_id": USER_ID, "access_key": wrong_key}),
        422,
        "invalid_credentials",
        "access_key",
    )
    bad_url = {"user_id": USER_ID, "access_key": ACCESS_KEY, "base_url": "ftp://x"}
    error(client.put(put, json=bad_url), 422, "bad_input", "base_url")
    error(client.get(f"{API}/credentials"), 404, "no_credentials")

    saved = client.put(put, json={"user_id": USER_ID, "access_key": ACCESS_KEY})
    assert saved.status_code == 200, saved.text
    assert ACCESS_KEY not in saved.text
    status = saved.json()
    assert status["user_id"] == USER_ID
    assert status["customer_id"]
    assert status["verified_at"] is not None
    assert set(status) == {"user_id", "base_url", "customer_id", "verified_at"}
    got = client.get(f"{API}/credentials")
    assert got.json() == status
    assert ACCESS_KEY not in got.text

    found = ok(client.get(f"{API}/institutions", params={"q": "Sophtron Bank"}))
    names = {item["name"] for item in found}
    assert {"Sophtron Bank", "Sophtron Bank NoMFA"} <= names
    assert all(item["institution_id"] for item in found)
    error(client.get(f"{API}/institutions", params={"q": "S"}), 422, "bad_input", "q")
    error(client.get(f"{API}/institutions"), 422, "bad_input", "q")

    assert client.delete(put).status_code == 204
    error(client.get(put), 404, "no_credentials")
    error(client.delete(put), 404)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/institutions", {"q": "  S  "}, "q"),
        ("/transactions", {"cursor": 99999999}, "cursor"),
        ("/connections/not-a-number", {}, "connection_id"),
        ("/accounts/not-a-number", {}, "account_id"),
    ],
    ids=["institutions-q", "transactions-cursor", "connection-path-id", "account-path-id"],
)
def test_an_error_names_the_parameter_at_fault(
    browser: Callable[..., httpx.Client], path: str, params: dict[str, Any], field: str
) -> None:
    """The ``field`` of an error is the request's own parameter, as the client spelled it."""
    client = browser()
    set_up(client, credentials=False)
    method = "PATCH" if path.startswith("/accounts") else "GET"
    response = client.request(method, f"{API}{path}", params=params, json={"name": "x"})
    error(response, 422, "bad_input", field)


def test_ids_out_of_range_are_refused_without_a_server_error(
    browser: Callable[..., httpx.Client],
) -> None:
    client = browser()
    set_up(client, credentials=False)
    for bad in (2**63, 2**31, 0, -1):
        for method, path, body in (
            ("GET", f"/connections/{bad}", None),
            ("POST", f"/connections/{bad}/poll", None),
            ("DELETE", f"/connections/{bad}", None),
            ("PATCH", f"/accounts/{bad}", {"name": "x"}),
            ("POST", f"/accounts/{bad}/unlink", None),
            ("DELETE", f"/transactions/{bad}", None),
            ("DELETE", f"/tokens/{bad}", None),
            ("PATCH", f"/users/{bad}", {"role": "member"}),
            ("GET", f"/transactions?cursor={bad}", None),
            ("GET", f"/transactions?account_id={bad}", None),
            ("GET", f"/provider-accounts?connection_id={bad}", None),
            ("POST", "/links", {"provider_account_id": bad}),
            ("POST", "/sync", {"connection_id": bad}),
        ):
            response = client.request(method, f"{API}{path}", json=body)
            assert response.status_code in {200, 404, 422}, (method, path, response.text)
            if response.status_code == 200:
                assert response.json() == []


# --- connections ----------------------------------------------------------------------------------


def test_connecting_with_every_challenge(browser: Callable[..., httpx.Client]) -> None:
    client = browser()
    set_up(client)
    created = start(client, "mfa-walker", bank="Sophtron Bank")
    cid = created["id"]
    error(client.post(f"{API}/connections/{cid}/answer", json={"answer": "x"}), 409, "no_challenge")

    seen: list[str] = []
    view = settle(client, cid)
    while view["status"] == "needs_input":
        challenge = view["challenge"]
        kind = challenge["kind"]
        seen.append(kind)
        assert view["message"]
        assert ok(client.get(f"{API}/connections/{cid}")) == view
        if kind == "captcha":
            assert base64.b64decode(challenge["image_png_base64"])[:8] == PNG
            assert challenge["questions"] is challenge["options"] is challenge["label"] is None
            # A captcha takes one text: a list or a boolean is refused before Sophtron sees it.
            error(
                client.post(f"{API}/connections/{cid}/answer", json={"answer": True}),
                422,
                None,
                "answer",
            )
            answer: Any = ANSWERS["captcha"]
        elif kind == "security_questions":
            questions = challenge["questions"]
            assert questions
            assert all(isinstance(q, str) and q for q in questions)
            assert challenge["image_png_base64"] is None
            too_many = ["a"] * (len(questions) + 1)
            error(
                client.post(f"{API}/connections/{cid}/answer", json={"answer": too_many}),
                422,
                None,
                "answer",
            )
            answer = ANSWERS["security_questions"][: len(questions)]
        elif kind == "token_method":
            assert len(challenge["options"]) >= 2
            assert all(isinstance(o, str) and o for o in challenge["options"])
            error(
                client.post(f"{API}/connections/{cid}/answer", json={"answer": "99"}),
                422,
                None,
                "answer",
            )
            answer = "0"
        else:
            assert kind == "token_input"
            assert challenge["label"]
            answer = ANSWERS["token_input"]
        answered = ok(client.post(f"{API}/connections/{cid}/answer", json={"answer": answer}))
        assert answered["status"] == "connecting"
        assert answered["challenge"] is None
        error(
            client.post(f"{API}/connections/{cid}/answer", json={"answer": answer}),
            409,
            "no_challenge",
        )
        view = settle(client, cid)
    assert seen == ["captcha", "security_questions", "token_method", "token_input"]
    assert view["status"] == "connected", view
    assert view["challenge"] is None
    assert view["error_code"] is None

    assert ok(client.get(f"{API}/connections")) == [view]
    assert ok(client.get(f"{API}/connections/{cid}")) == view
    error(client.post(f"{API}/connections/{cid}/answer", json={"answer": "x"}), 409, "no_challenge")
    error(client.post(f"{API}/connections/{cid}/answer", json={}), 422, "bad_input", "answer")
    # A poll or a check-again on a settled connection changes nothing.
    assert ok(client.post(f"{API}/connections/{cid}/poll")) == view
    assert ok(client.post(f"{API}/connections/{cid}/check-again")) == view
    for method, path in (
        ("GET", ""),
        ("POST", "/poll"),
        ("POST", "/check-again"),
        ("POST", "/retry"),
        ("DELETE", ""),
    ):
        error(client.request(method, f"{API}/connections/999999{path}"), 404, "not_found")
    error(client.post(f"{API}/connections/999999/answer", json={"answer": "x"}), 404)
    login = {"username": "u", "password": "p"}
    error(client.put(f"{API}/connections/999999/login", json=login), 404)


def test_connection_failures_retry_new_login_and_delete(
    browser: Callable[..., httpx.Client],
) -> None:
    client = browser()
    set_up(client)
    nomfa = institution(client, "Sophtron Bank NoMFA")
    body = {"institution_id": nomfa, "username": "  "}
    error(client.post(f"{API}/connections", json=body), 422, "bad_input", "username")
    body = {"institution_id": "  ", "username": "x"}
    error(client.post(f"{API}/connections", json=body), 422, "bad_input", "institution_id")
    error(
        client.post(f"{API}/connections", json={"username": "x"}),
        422,
        "bad_input",
        "institution_id",
    )
    assert ok(client.get(f"{API}/connections")) == []

    created = start(client, "forgetful", password="wrong")
    cid = created["id"]
    failed = settle(client, cid)
    assert failed["status"] == "failed"
    assert failed["error_code"] == "job_bad_credentials"
    assert failed["message"]
    assert failed["challenge"] is None

    retried = ok(client.post(f"{API}/connections/{cid}/retry"))
    assert retried["status"] == "connecting"
    assert retried["error_code"] == "job_bad_credentials" or retried["error_code"] is None
    again = settle(client, cid)
    assert again["status"] == "failed"
    assert again["error_code"] == "job_bad_credentials"

    error(
        client.put(f"{API}/connections/{cid}/login", json={"username": "forgetful"}),
        422,
        None,
        "password",
    )
    updated = ok(
        client.put(
            f"{API}/connections/{cid}/login",
            json={"username": "forgetful", "password": "the-right-one"},
        )
    )
    assert updated["status"] == "connecting"
    connected = settle(client, cid)
    assert connected["status"] == "connected", connected
    assert connected["error_code"] is None
    assert ok(client.get(f"{API}/provider-accounts", params={"connection_id": cid}))

    assert client.delete(f"{API}/connections/{cid}").status_code == 204
    error(client.get(f"{API}/connections/{cid}"), 404, "not_found")
    error(client.delete(f"{API}/connections/{cid}"), 404, "not_found")
    error(client.post(f"{API}/connections/{cid}/retry"), 404, "not_found")
    assert ok(client.get(f"{API}/connections")) == []
    assert ok(client.get(f"{API}/provider-accounts")) == []


def test_a_slow_bank_times_out_and_is_checked_again(
    web: WebServer, browser: Callable[..., httpx.Client]
) -> None:
    client = browser()
    set_up(client)
    cid = start(client, "stuck-never-finishes")["id"]
    assert ok(client.post(f"{API}/connections/{cid}/poll"))["status"] == "connecting"
    # Check-again only acts on a timed-out connection.
    assert ok(client.post(f"{API}/connections/{cid}/check-again"))["status"] == "connecting"

    web.core.clock.advance(seconds=300)
    timed_out = ok(client.post(f"{API}/connections/{cid}/poll"))
    assert timed_out["status"] == "timed_out"
    assert timed_out["error_code"] == "timed_out"
    assert ok(client.get(f"{API}/connections/{cid}")) == timed_out
    error(client.post(f"{API}/connections/{cid}/answer", json={"answer": "x"}), 409, "no_challenge")

    again = ok(client.post(f"{API}/connections/{cid}/check-again"))
    assert again["status"] == "connecting"
    assert ok(client.post(f"{API}/connections/{cid}/poll"))["status"] == "connecting"
    assert client.delete(f"{API}/connections/{cid}").status_code == 204
    assert ok(client.get(f"{API}/connections")) == []


# --- provider accounts, links, accounts -----------------------------------------------------------


def test_links_and_accounts(browser: Callable[..., httpx.Client]) -> None:
    client = browser()
    set_up(client)
    cid = connect(client, "linker+accounts=3")["id"]
    providers = ok(client.get(f"{API}/provider-accounts", params={"connection_id": cid}))
    assert len(providers) == 3
    assert ok(client.get(f"{API}/provider-accounts")) == providers
    assert ok(client.get(f"{API}/provider-accounts", params={"connection_id": 999999})) == []
    error(
        client.get(f"{API}/provider-accounts", params={"connection_id": "x"}),
        422,
        None,
        "connection_id",
    )
    first, second, third = providers
    assert first["name"] == "Primary Checking"
    assert first["mask"] == "1234"
    assert all(p["linked_account_id"] is None for p in providers)
    assert all(p["balance"] is None or MONEY.fullmatch(p["balance"]) for p in providers)
    assert ok(client.get(f"{API}/accounts")) == []

    links = f"{API}/links"
    error(client.post(links, json={"provider_account_id": 999999}), 404, "not_found")
    error(
        client.post(links, json={"provider_account_id": first["id"], "history_days": 0}),
        422,
        None,
        "history_days",
    )
    future = (TODAY + dt.timedelta(days=1)).isoformat()
    error(
        client.post(links, json={"provider_account_id": first["id"], "sync_start_date": future}),
        422,
        None,
        "sync_start_date",
    )
    error(
        client.post(links, json={"provider_account_id": first["id"], "type": "yacht"}),
        422,
        "bad_input",
        "type",
    )
    error(client.post(links, json={}), 422, "bad_input", "provider_account_id")

    account = ok(
        client.post(links, json={"provider_account_id": first["id"], "history_days": 30}), 201
    )
    assert account["name"] == "Primary Checking"
    assert account["linked"] is True
    assert isinstance(account["balance"], str)
    assert MONEY.fullmatch(account["balance"])
    assert Decimal(account["balance"]) == Decimal(first["balance"])
    assert account["available"] is None or MONEY.fullmatch(account["available"])
    assert account["sync_start_date"] is not None
    error(client.post(links, json={"provider_account_id": first["id"]}), 409, "linked_already")
    listed = ok(client.get(f"{API}/provider-accounts", params={"connection_id": cid}))
    assert listed[0]["linked_account_id"] == account["id"]

    named = ok(
        client.post(links, json={"provider_account_id": second["id"], "name": "Rainy day"}), 201
    )
    assert named["name"] == "Rainy day"
    # An account linked already takes no second provider account.
    both = {"provider_account_id": third["id"], "account_id": named["id"]}
    error(client.post(links, json=both), 409, "linked_already")
    error(client.post(links, json={**both, "account_id": 999999}), 404, "not_found")

    unlinked = ok(client.post(f"{API}/accounts/{named['id']}/unlink"))
    assert unlinked["linked"] is False
    assert unlinked["name"] == "Rainy day"
    error(client.post(f"{API}/accounts/{named['id']}/unlink"), 409, "not_linked")
    error(client.post(f"{API}/accounts/999999/unlink"), 404, "not_found")
    # The provider account is free again, and may link to the existing account.
    existing = ok(
        client.post(links, json={"provider_account_id": second["id"], "account_id": named["id"]}),
        201,
    )
    assert existing["id"] == named["id"]
    assert existing["linked"] is True
    assert existing["name"] == "Rainy day"
    error(
        client.post(links, json={"provider_account_id": second["id"], "account_id": named["id"]}),
        409,
        "linked_already",
    )
    assert [a["id"] for a in ok(client.get(f"{API}/accounts"))] == [account["id"], named["id"]]

    patch = f"{API}/accounts/{account['id']}"
    renamed = ok(client.patch(patch, json={"name": "  Bills  "}))
    assert renamed["name"] == "Bills"
    assert renamed["balance"] == account["balance"]
    error(client.patch(patch, json={"name": "   "}), 422, "bad_input", "name")
    error(client.patch(patch, json={"name": ""}), 422, "bad_input", "name")
    error(client.patch(patch, json={"type": "yacht"}), 422, "bad_input", "type")
    error(client.patch(f"{API}/accounts/999999", json={"name": "x"}), 404, "not_found")
    inverted = ok(client.patch(patch, json={"invert_sign": True}))
    assert inverted["invert_sign"] is True
    assert Decimal(inverted["balance"]) == -Decimal(account["balance"])
    assert (
        next(a for a in ok(client.get(f"{API}/accounts")) if a["id"] == account["id"]) == inverted
    )


# --- syncs and transactions -----------------------------------------------------------------------


def test_sync_and_transactions(web: WebServer, browser: Callable[..., httpx.Client]) -> None:
    client = browser()
    set_up(client)
    error(client.post(f"{API}/sync", json={}), 422, "no_connections")
    assert ok(client.get(f"{API}/sync-runs")) == []
    assert ok(client.get(f"{API}/transactions")) == {"items": [], "next_cursor": None}

    view = connect(client, "syncer+accounts=3")
    cid = view["id"]
    link_all(client, cid)
    error(client.post(f"{API}/sync", json={"connection_id": 999999}), 404, "not_found")
    error(
        client.post(f"{API}/sync", json={"backfill_from": "yesterday"}), 422, None, "backfill_from"
    )
    assert ok(client.post(f"{API}/sync", json={}), 202) == {"queued": [cid], "already_queued": []}
    assert ok(client.post(f"{API}/sync", json={"connection_id": cid}), 202) == {
        "queued": [],
        "already_queued": [cid],
    }
    run_jobs(web)
    runs = ok(client.get(f"{API}/sync-runs"))
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "succeeded", run
    assert run["connection_id"] == cid
    assert run["trigger"] == "manual"
    assert run["added"] > 0
    assert run["requests"] > 0
    assert run["error"] is None
    assert run["finished_at"] is not None
    error(client.get(f"{API}/sync-runs", params={"limit": 0}), 422, "bad_input", "limit")
    assert ok(client.get(f"{API}/sync-runs", params={"limit": 1})) == runs

    everything = all_transactions(client)
    assert len(everything) == run["added"]
    assert [(t["date"], t["id"]) for t in everything] == sorted(
        ((t["date"], t["id"]) for t in everything), reverse=True
    )
    for txn in everything:
        assert isinstance(txn["amount"], str)
        assert MONEY.fullmatch(txn["amount"]), txn
        assert txn["currency"] == "USD"
        assert Decimal(txn["amount"]) == Decimal(txn["amount_minor"]) / 100

    # Cursor pages: every transaction once, in the same order.
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor is not None:
            params["cursor"] = cursor
        page = ok(client.get(f"{API}/transactions", params=params))
        assert len(page["items"]) <= 7
        paged.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == page["items"][-1]["id"]
    assert [t["id"] for t in paged] == [t["id"] for t in everything]
    assert len({t["id"] for t in paged}) == len(paged)

    # Filters.
    accounts = ok(client.get(f"{API}/accounts"))
    assert len(accounts) == 3
    for account in accounts:
        assert account["last_synced_at"] is not None
        mine = all_transactions(client, account_id=account["id"])
        assert {t["account_id"] for t in mine} <= {account["id"]}
        assert mine == [t for t in everything if t["account_id"] == account["id"]]
    dates = sorted({t["date"] for t in everything})
    low, high = dates[len(dates) // 3], dates[2 * len(dates) // 3]
    window = all_transactions(client, start=low, end=high)
    assert window == [t for t in everything if low <= t["date"] <= high]
    assert window
    assert all_transactions(client, start=high) == [t for t in everything if t["date"] >= high]
    assert all_transactions(client, end=low) == [t for t in everything if t["date"] <= low]
    pending = all_transactions(client, pending="true")
    posted = all_transactions(client, pending="false")
    assert pending
    assert all(t["pending"] for t in pending)
    assert not any(t["pending"] for t in posted)
    assert len(pending) + len(posted) == len(everything)

    transactions = f"{API}/transactions"
    error(client.get(transactions, params={"start": high, "end": low}), 422, "bad_input", "start")
    error(client.get(transactions, params={"start": "not-a-date"}), 422, "bad_input", "start")
    error(client.get(transactions, params={"limit": 0}), 422, "bad_input", "limit")
    error(client.get(transactions, params={"limit": 1001}), 422, "bad_input", "limit")
    error(client.get(transactions, params={"pending": "maybe"}), 422, "bad_input", "pending")
    error(client.get(transactions, params={"account_id": 999999}), 404, "not_found")

    # Deleting a transaction: gone, and another sync does not bring it back.
    victim = everything[len(everything) // 2]
    error(client.delete(f"{API}/transactions/99999999"), 404, "not_found")
    assert client.delete(f"{API}/transactions/{victim['id']}").status_code == 204
    after = all_transactions(client)
    assert victim["id"] not in {t["id"] for t in after}
    assert len(after) == len(everything) - 1
    web.core.clock.advance(seconds=3600)  # past the freshness window: the sync refreshes
    assert ok(client.post(f"{API}/sync", json={"connection_id": cid}), 202)["queued"] == [cid]
    run_jobs(web)
    runs = ok(client.get(f"{API}/sync-runs"))
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    again = all_transactions(client)
    assert victim["id"] not in {t["id"] for t in again}
    assert victim["provider_id"] not in {t["provider_id"] for t in again}


# --- members --------------------------------------------------------------------------------------


def test_members_read_everything_and_change_nothing(
    web: WebServer, browser: Callable[..., httpx.Client]
) -> None:
    admin = browser()
    set_up(admin)
    cid = synced(web, admin, "family+accounts=2")["id"]
    stuck = start(admin, "stuck-never-finishes")["id"]
    account_id = ok(admin.get(f"{API}/accounts"))[0]["id"]
    provider_id = ok(admin.get(f"{API}/provider-accounts"))[0]["id"]
    txn_id = all_transactions(admin)[0]["id"]
    ok(admin.post(f"{API}/users", json={"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD}), 201)
    member = browser()
    log_in(member, MEMBER_EMAIL, MEMBER_PASSWORD)

    reads = [
        "/me",
        "/users",
        "/tokens",
        "/credentials",
        "/institutions?q=Sophtron",
        "/connections",
        f"/connections/{cid}",
        "/provider-accounts",
        f"/provider-accounts?connection_id={cid}",
        "/accounts",
        "/transactions",
        f"/transactions?account_id={account_id}",
        "/sync-runs",
    ]
    for path in reads:
        seen = ok(member.get(f"{API}{path}"))
        if path not in {"/me", "/tokens"}:
            assert seen == ok(admin.get(f"{API}{path}")), path

    writes: list[tuple[str, str, Any]] = [
        ("PUT", "/credentials", {"user_id": USER_ID, "access_key": ACCESS_KEY}),
        ("DELETE", "/credentials", None),
        ("POST", "/connections", {"institution_id": "x", "username": "kid"}),
        ("POST", f"/connections/{cid}/poll", None),
        ("POST", f"/connections/{stuck}/poll", None),
        ("POST", f"/connections/{cid}/answer", {"answer": "x"}),
        ("POST", f"/connections/{cid}/check-again", None),
        ("POST", f"/connections/{cid}/retry", None),
        ("PUT", f"/connections/{cid}/login", {"username": "kid", "password": "pw"}),
        ("DELETE", f"/connections/{cid}", None),
        ("POST", "/links", {"provider_account_id": provider_id}),
        ("POST", "/links", {"provider_account_id": provider_id, "account_id": account_id}),
        ("PATCH", f"/accounts/{account_id}", {"name": "Mine now"}),
        ("POST", f"/accounts/{account_id}/unlink", None),
        ("DELETE", f"/transactions/{txn_id}", None),
        ("POST", "/sync", {}),
        ("POST", "/sync", {"connection_id": cid}),
        ("POST", "/users", {"email": "new@example.com", "password": MEMBER_PASSWORD}),
        ("PATCH", f"/users/{ok(member.get(f'{API}/me'))['id']}", {"role": "admin"}),
    ]
    before = {path: ok(admin.get(f"{API}{path}")) for path in reads if path != "/me"}
    for method, path, body in writes:
        response = member.request(method, f"{API}{path}", json=body)
        error(response, 403, "forbidden")
    # Nothing changed, nothing was queued.
    after = {path: ok(admin.get(f"{API}{path}")) for path in reads if path != "/me"}
    assert after == before
    assert ok(admin.get(f"{API}/connections/{stuck}"))["status"] == "connecting"
    assert ok(member.get(f"{API}/me"))["role"] == "member"
    assert web.queue.pending() == 0
    # What is their own stays theirs: a member manages its own tokens.
    token = ok(member.post(f"{API}/tokens", json={"name": "kid"}), 201)
    assert member.delete(f"{API}/tokens/{token['id']}").status_code == 204


# --- two families ---------------------------------------------------------------------------------


def test_families_see_nothing_of_each_other(
    web: WebServer, browser: Callable[..., httpx.Client]
) -> None:
    smiths = browser()
    first = set_up(smiths)
    cid = synced(web, smiths, "smiths+accounts=2")["id"]
    stuck = start(smiths, "stuck-never-finishes")["id"]
    accounts = ok(smiths.get(f"{API}/accounts"))
    account_id = accounts[0]["id"]
    unlinked_id = ok(smiths.post(f"{API}/accounts/{accounts[1]['id']}/unlink"))["id"]
    providers = ok(smiths.get(f"{API}/provider-accounts"))
    free_provider = next(p["id"] for p in providers if p["linked_account_id"] is None)
    txns = all_transactions(smiths)
    txn_id = txns[0]["id"]
    token_id = ok(smiths.post(f"{API}/tokens", json={"name": "smiths"}), 201)["id"]
    runs = ok(smiths.get(f"{API}/sync-runs"))
    snapshot = {
        path: ok(smiths.get(f"{API}{path}"))
        for path in ("/connections", "/accounts", "/provider-accounts", "/sync-runs", "/users")
    }

    other = families.create_family(web.core, "The Joneses", "jones@example.com", ADMIN_PASSWORD)
    assert other.family_id != first["family_id"]
    jones = browser()
    me = log_in(jones, "jones@example.com", ADMIN_PASSWORD)
    assert me["family_id"] == other.family_id
    assert me["role"] == "admin"
    error(jones.get(f"{API}/credentials"), 404, "no_credentials")
    put = {"user_id": OTHER_USER_ID, "access_key": OTHER_ACCESS_KEY}
    assert ok(jones.put(f"{API}/credentials", json=put))["user_id"] == OTHER_USER_ID
    assert ok(smiths.get(f"{API}/credentials"))["user_id"] == USER_ID

    assert ok(jones.get(f"{API}/connections")) == []
    assert ok(jones.get(f"{API}/accounts")) == []
    assert ok(jones.get(f"{API}/provider-accounts")) == []
    assert ok(jones.get(f"{API}/provider-accounts", params={"connection_id": cid})) == []
    assert ok(jones.get(f"{API}/transactions")) == {"items": [], "next_cursor": None}
    assert ok(jones.get(f"{API}/sync-runs")) == []
    assert ok(jones.get(f"{API}/users")) == [me]
    assert ok(jones.get(f"{API}/tokens")) == []
    error(jones.post(f"{API}/sync", json={}), 422, "no_connections")

    direct: list[tuple[str, str, Any]] = [
        ("GET", f"/connections/{cid}", None),
        ("GET", f"/connections/{stuck}", None),
        ("POST", f"/connections/{cid}/poll", None),
        ("POST", f"/connections/{stuck}/poll", None),
        ("POST", f"/connections/{cid}/answer", {"answer": "x"}),
        ("POST", f"/connections/{stuck}/check-again", None),
        ("POST", f"/connections/{cid}/retry", None),
        ("PUT", f"/connections/{cid}/login", {"username": "jones", "password": "pw"}),
        ("DELETE", f"/connections/{cid}", None),
        ("POST", "/links", {"provider_account_id": free_provider}),
        ("POST", "/links", {"provider_account_id": free_provider, "account_id": unlinked_id}),
        ("PATCH", f"/accounts/{account_id}", {"name": "Ours now"}),
        ("POST", f"/accounts/{account_id}/unlink", None),
        ("GET", f"/transactions?account_id={account_id}", None),
        ("DELETE", f"/transactions/{txn_id}", None),
        ("POST", "/sync", {"connection_id": cid}),
        ("PATCH", f"/users/{first['id']}", {"role": "member"}),
        ("DELETE", f"/tokens/{token_id}", None),
    ]
    for method, path, body in direct:
        response = jones.request(method, f"{API}{path}", json=body)
        error(response, 404)
        for secret in ("smiths", "Primary Checking", ADMIN_EMAIL, txns[0]["description"]):
            assert secret not in response.text, (method, path, response.text)
    # A cursor of theirs reveals nothing either.
    page = jones.get(f"{API}/transactions", params={"cursor": txn_id})
    assert page.status_code in {200, 422}
    if page.status_code == 200:
        assert page.json()["items"] == []

    # The Joneses' own connection stays theirs.
    joneses = connect(jones, "joneses+accounts=1")
    assert ok(jones.get(f"{API}/connections")) == [joneses]
    error(smiths.get(f"{API}/connections/{joneses['id']}"), 404, "not_found")
    error(smiths.post(f"{API}/connections/{joneses['id']}/poll"), 404, "not_found")
    joneses_provider = ok(jones.get(f"{API}/provider-accounts"))[0]["id"]
    error(smiths.post(f"{API}/links", json={"provider_account_id": joneses_provider}), 404)

    # The Smiths' data is untouched.
    for path, seen in snapshot.items():
        assert ok(smiths.get(f"{API}{path}")) == seen, path
    assert all_transactions(smiths) == txns
    assert ok(smiths.get(f"{API}/sync-runs")) == runs
    assert [t["id"] for t in ok(smiths.get(f"{API}/tokens"))] == [token_id]
    assert ok(smiths.get(f"{API}/connections/{stuck}"))["status"] == "connecting"


# --- cross-site requests --------------------------------------------------------------------------


def test_cross_site_requests_with_a_cookie_are_refused(
    browser: Callable[..., httpx.Client],
) -> None:
    client = browser()
    set_up(client, credentials=False)
    evil = {"Origin": "http://evil.example"}
    cross = {"Sec-Fetch-Site": "cross-site"}
    for headers in (evil, cross, {"Sec-Fetch-Site": "same-site"}):
        error(client.post(f"{API}/tokens", json={"name": "x"}, headers=headers), 403, "cross_site")
        error(client.delete(f"{API}/session", headers=headers), 403, "cross_site")
        user = {"email": "x@example.com", "password": MEMBER_PASSWORD}
        error(client.post(f"{API}/users", json=user, headers=headers), 403, "cross_site")
        login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        error(browser().post(f"{API}/session", json=login, headers=headers), 403, "cross_site")
    assert ok(client.get(f"{API}/tokens")) == []
    assert [u["email"] for u in ok(client.get(f"{API}/users"))] == [ADMIN_EMAIL]
    # Reading is safe cross-site; the session survived the refused logout.
    assert ok(client.get(f"{API}/me", headers=evil))["email"] == ADMIN_EMAIL
    assert ok(client.get(f"{API}/me", headers=cross))["email"] == ADMIN_EMAIL

    # Same site: accepted.
    same_origin = {"Origin": str(client.base_url).rstrip("/")}
    ok(client.post(f"{API}/tokens", json={"name": "a"}, headers=same_origin), 201)
    ok(
        client.post(f"{API}/tokens", json={"name": "b"}, headers={"Sec-Fetch-Site": "same-origin"}),
        201,
    )
    created = ok(
        client.post(f"{API}/tokens", json={"name": "c"}, headers={"Sec-Fetch-Site": "none"}), 201
    )

    # A bearer token carries no ambient authority: no cross-site check.
    bearer = browser(headers={"Authorization": f"Bearer {created['token']}"})
    for headers in (evil, cross):
        ok(bearer.post(f"{API}/tokens", json={"name": "from a script"}, headers=headers), 201)
    ok(
        bearer.post(
            f"{API}/users",
            json={"email": "y@example.com", "password": MEMBER_PASSWORD},
            headers=evil,
        ),
        201,
    )
    assert len(ok(client.get(f"{API}/tokens"))) == 5
