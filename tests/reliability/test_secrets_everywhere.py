"""No secret anywhere a person or a backup could read it, after everything a household does.

tests/core/test_secrets.py scans the database and the captured log records after one flow
through the core. This suite goes wider: the whole household's life over real HTTP (first run,
credentials, every MFA test bank answered with its own answers, linking, a sync by the worker,
an API token, a SimpleFIN claim and fetch, every HTML page, an export in every format), with
every logger at DEBUG written to a file, and then it scans the bytes of

- the SQLite database and its WAL and shared-memory files,
- the log file,
- every export file,
- every HTTP response body and header the app sent,

for the Access Key (as sent, decoded, unpadded, in hex), the family's login password, every bank
password, every MFA answer (security answers, token code, captcha text), the API token and the
SimpleFIN access secret, each also URL-quoted and in base64. The values are chosen so that a
match cannot be chance. The scanner itself is shown to find a secret planted in a scratch file,
so a clean scan means something.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa

from sophsync.bridges import simplefin
from sophsync.core import families
from sophsync.core.app import Core
from sophsync.exporters import files
from sophsync.jobs import Worker
from sophsync.sandbox import SandboxServer
from tests.core.conftest import (  # noqa: F401 - fixtures shared with the core tests
    clock,
    database_url,
    make_core,
    postgres_url,
)
from tests.web.conftest import WebServer

API = "/api/v1"
USER_ID = "5e1f0c2a-7d3b-4c8e-9a61-2b4d6f8e0a13"
#: Base64 of a 32-byte key, as Sophtron hands them out; decoded it reads as text, so that a
#: decoded copy is as easy to spot as the encoded one.
ACCESS_KEY = base64.b64encode(b"ak-Reliab1lity-Secr3t-HMAC-k3y!!").decode()
LOGIN_PASSWORD = "family-login-Qv7Lp-30917"
CAPTCHA = "CAPTXT-Wm4Rz"
TOKEN_CODE = "TOKCODE-88317"
#: The test banks and the MFA each asks (docs/sandbox.md), with one bank password each.
BANKS = {
    "Sophtron Bank": ["captcha", "security_questions", "token_method", "token_input"],
    "Sophtron Bank NoMFA": [],
    "Sophtron Bank Captcha": ["captcha"],
    "Sophtron Bank SecurityQuestion": ["security_questions"],
    "Sophtron Bank SecurityQuestion Multiple": ["security_questions"],
    "Sophtron Bank Token": ["token_method", "token_input"],
    "Sophtron Bank TokenRead": ["phone_confirmation"],
}


def bank_password(index: int) -> str:
    return f"bankpass-{index}-Hx9Tq-2417"


def security_answer(index: int, question: int) -> str:
    return f"secanswer-{index}-{question}-Pz5Kd"


@dataclass
class Secrets:
    """Every secret by name, and the text forms each may take when it leaks."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        assert len(value) >= 8, (name, value)  # short values could match by chance
        self.values[name] = value

    def forms(self) -> dict[str, list[bytes]]:
        found: dict[str, list[bytes]] = {}
        for name, value in self.values.items():
            raw = value.encode()
            found[name] = [raw, quote(value, safe="").encode(), base64.b64encode(raw)]
        key = base64.b64decode(ACCESS_KEY)
        found["access key"] += [key, key.hex().encode(), ACCESS_KEY.rstrip("=").encode()]
        return found

    def leaks(self, blob: bytes, allowed: frozenset[str] = frozenset()) -> list[str]:
        """The names of the secrets ``blob`` holds in any form (any case)."""
        lowered = blob.lower()
        return sorted(
            name
            for name, forms in self.forms().items()
            if name not in allowed and any(form.lower() in lowered for form in forms)
        )


@dataclass
class Seen:
    """HTTP responses as (what, bytes, secrets the response is meant to carry)."""

    responses: list[tuple[str, bytes, frozenset[str]]] = field(default_factory=list)
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)

    def hook(self, response: httpx.Response) -> None:
        response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        path = response.request.url.path
        what = f"{response.request.method} {path} -> {response.status_code}"
        allowed = next(
            (names for prefix, names in self.allowed.items() if path.startswith(prefix)),
            frozenset(),
        )
        self.responses.append((what, headers + b"\n\n" + response.content, allowed))


@pytest.fixture
def backend() -> str:
    """The file scan reads SQLite's files; tests/core/test_secrets.py reads PostgreSQL's rows."""
    return "sqlite"


@pytest.fixture
def secret_sandbox(make_sandbox: Callable[..., SandboxServer]) -> SandboxServer:
    return make_sandbox(users={USER_ID: ACCESS_KEY})


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[logging.FileHandler]:
    """Every logger at DEBUG, into one file, as an operator chasing a problem would run."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


def connect_bank(
    client: httpx.Client, bank: str, index: int, secrets: Secrets
) -> tuple[int, list[str]]:
    """Connect one test bank over the API, answering each prompt with this bank's answers."""
    found = ok(client.get(f"{API}/institutions", params={"q": bank}))
    institution = next(item["institution_id"] for item in found if item["name"] == bank)
    password = bank_password(index)
    secrets.add(f"bank password {index}", password)
    created = ok(
        client.post(
            f"{API}/connections",
            json={
                "institution_id": institution,
                "username": f"secret-keeper-{index}+accounts=2+years=0.2",
                "password": password,
            },
        ),
        201,
    )
    cid = created["id"]
    kinds: list[str] = []
    for _ in range(200):
        view = ok(client.post(f"{API}/connections/{cid}/poll"))
        if view["status"] == "connecting":
            continue
        if view["status"] != "needs_input":
            break
        challenge = view["challenge"]
        kinds.append(challenge["kind"])
        answer: Any
        if challenge["kind"] == "captcha":
            answer = CAPTCHA
        elif challenge["kind"] == "security_questions":
            answer = [security_answer(index, n) for n in range(len(challenge["questions"]))]
            for n, value in enumerate(answer):
                secrets.add(f"security answer {index}.{n}", value)
        elif challenge["kind"] == "token_method":
            answer = "0"  # a choice among the options shown, not a secret
        elif challenge["kind"] == "token_input":
            answer = TOKEN_CODE
        else:
            answer = True
        ok(client.post(f"{API}/connections/{cid}/answer", json={"answer": answer}))
    assert view["status"] == "connected", view
    return cid, kinds


def sqlite_files(core: Core) -> dict[str, bytes]:
    database = sa.engine.make_url(core.settings.url).database
    assert database
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{database}{suffix}")
        if path.exists():
            found[path.name] = path.read_bytes()
    return found


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    """A planted secret is found in every form it scans for; a clean blob is clean."""
    secrets = Secrets()
    secrets.add("access key", ACCESS_KEY)
    secrets.add("bank password 0", bank_password(0))
    scratch = tmp_path / "scratch.txt"
    for planted in (
        bank_password(0).upper(),
        quote(bank_password(0), safe=""),
        base64.b64encode(bank_password(0).encode()).decode(),
    ):
        scratch.write_text(f"a line, then {planted} in the middle\n")
        assert secrets.leaks(scratch.read_bytes()) == ["bank password 0"], planted
    scratch.write_bytes(b"header" + base64.b64decode(ACCESS_KEY) + b"trailer")
    assert secrets.leaks(scratch.read_bytes()) == ["access key"]
    assert secrets.leaks(scratch.read_bytes(), frozenset({"access key"})) == []
    assert secrets.leaks(b"bankpass-1-Hx9Tq-2417 is another bank's") == []


def test_no_secret_in_the_database_logs_exports_or_responses(
    make_core: Callable[..., Core],  # noqa: F811
    secret_sandbox: SandboxServer,
    debug_log: logging.FileHandler,
    tmp_path: Path,
) -> None:
    secrets = Secrets()
    secrets.add("access key", ACCESS_KEY)
    secrets.add("login password", LOGIN_PASSWORD)
    secrets.add("captcha", CAPTCHA)
    secrets.add("token code", TOKEN_CODE)
    seen = Seen()
    core = make_core(secret_sandbox)
    web = WebServer(core).start()
    # The test's own clients log the URLs they call (httpx, INFO), a SimpleFIN claim URL among
    # them: that is the client's log, not the app's. The SDK's requests to Sophtron stay in.
    debug_log.addFilter(lambda record: web.url not in record.getMessage())
    try:
        with httpx.Client(
            base_url=web.url, timeout=30, event_hooks={"response": [seen.hook]}
        ) as client:
            ok(
                client.post(
                    f"{API}/setup",
                    json={
                        "family": "Keepers",
                        "email": "keeper@example.com",
                        "password": LOGIN_PASSWORD,
                    },
                ),
                201,
            )
            saved = ok(
                client.put(
                    f"{API}/credentials", json={"user_id": USER_ID, "access_key": ACCESS_KEY}
                )
            )
            assert saved["user_id"] == USER_ID

            # Every MFA test bank, each with its own password and answers.
            asked: dict[str, list[str]] = {}
            connections = []
            for index, bank in enumerate(BANKS):
                cid, asked[bank] = connect_bank(client, bank, index, secrets)
                connections.append(cid)
            assert asked == BANKS
            for provider in ok(client.get(f"{API}/provider-accounts")):
                ok(
                    client.post(
                        f"{API}/links",
                        json={"provider_account_id": provider["id"], "history_days": 60},
                    ),
                    201,
                )
            queued = ok(client.post(f"{API}/sync", json={}), 202)
            assert sorted(queued["queued"]) == sorted(connections)
            Worker(core, web.queue).run_until_idle()
            runs = ok(client.get(f"{API}/sync-runs"))
            assert {run["status"] for run in runs} == {"succeeded"}, runs
            transactions = ok(client.get(f"{API}/transactions", params={"limit": 1000}))
            assert transactions["items"]

            # An API token: shown once, in the answer that creates it.
            seen.allowed[f"{API}/tokens"] = frozenset({"api token"})
            token = ok(client.post(f"{API}/tokens", json={"name": "scripts"}), 201)["token"]
            secrets.add("api token", token)
            seen.allowed.pop(f"{API}/tokens")
            ok(client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}))

            # The SimpleFIN bridge: a setup token, its claim (the only answer that carries the
            # access secret), a fetch with it.
            admin = families.family_admin(core, ok(client.get(f"{API}/me"))["family_id"])
            setup = simplefin.create_setup_token(core, admin, web.url, "budget app")
            secrets.add("simplefin setup secret", setup.claim_url.rsplit("/", 1)[1])
            seen.allowed["/simplefin/claim/"] = frozenset({"simplefin access secret"})
            access = httpx.URL(client.post(setup.claim_url.removeprefix(web.url)).text)
            assert access.password
            secrets.add("simplefin access secret", access.password)
            bridged = client.get(
                "/simplefin/access/accounts", auth=(access.username, access.password)
            )
            assert bridged.status_code == 200, bridged.text
            assert bridged.json()["accounts"]

            # Every page a person opens (logged in by the API's session cookie).
            pages = ["/", "/transactions", "/runs", "/settings", "/connect"]
            pages += [f"/connections/{cid}" for cid in connections]
            pages += [f"/accounts/{a['id']}" for a in ok(client.get(f"{API}/accounts"))]
            for page in pages:
                shown = client.get(page)
                assert shown.status_code == 200, (page, shown.status_code)
                assert "<html" in shown.text.lower()
            ok(client.delete(f"{API}/session"), 204)

        # Every export format, written as `sophsync export` writes them.
        exports = tmp_path / "exports"
        exports.mkdir()
        export = files.prepare(core, admin)
        for fmt in files.FORMATS:
            files.write_file(export, fmt, exports / f"household.{fmt}")
        stored = sqlite_files(core)
    finally:
        web.stop()

    # The scans see the data (so they are reading the right bytes) ...
    debug_log.flush()
    logged = Path(debug_log.baseFilename).read_bytes()
    assert b"DEBUG" in logged
    assert b"sophsync" in logged
    assert any(b"keeper@example.com" in blob for blob in stored.values())
    written = {path.name: path.read_bytes() for path in sorted(exports.iterdir())}
    assert len(written) == len(files.FORMATS)
    posted = next(
        t for t in transactions["items"] if not t["pending"] and abs(Decimal(t["amount"])) < 1000
    )
    amount = str(abs(Decimal(posted["amount"]))).encode()
    assert all(amount in blob for blob in written.values()), (amount, list(written))
    assert posted["description"].encode() in written["household.csv"]
    assert len(seen.responses) > 30

    # ... and none of the secrets, in any form.
    leaks = {
        **{f"database {name}": secrets.leaks(blob) for name, blob in stored.items()},
        "log": secrets.leaks(logged),
        **{f"export {name}": secrets.leaks(blob) for name, blob in written.items()},
        **{
            f"response {what}": secrets.leaks(blob, allowed)
            for what, blob, allowed in seen.responses
        },
    }
    assert {where: names for where, names in leaks.items() if names} == {}
    assert len(secrets.values) >= 12, sorted(secrets.values)
