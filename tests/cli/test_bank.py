"""The bank commands, run as a subprocess against the sandbox: credentials, institutions,
connect (interactive through a pseudo-terminal, and with an answers file) and connections."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest

from sophsync.core import connect, credentials, families, sync
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.sandbox import SandboxServer
from sophsync.settings import Settings
from sophsync.store.models import ConnectionStatus
from tests.conftest import ACCESS_KEY, USER_ID
from tests.core.conftest import (  # noqa: F401 - postgres_url is a fixture used here
    Clock,
    advance,
    connect_and_link,
    connect_bank,
    emptied,
    postgres_url,
)

ROOT = Path(__file__).resolve().parents[2]
SOPHSYNC = [sys.executable, "-m", "sophsync"]
PASSWORD = "s3cret-bank-pass"
ANSWERS_FILE = {
    "captcha": "K7QX2cap",
    "security_questions": {"*": "blue-answer"},
    "token_method": "Email",
    "token_input": "908172",
}
#: Texts that must never be printed.
SECRETS = (ACCESS_KEY, PASSWORD, "blue-answer", "K7QX2cap", "908172")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Home:
    """A household in a database, and how to run the CLI against it and the sandbox."""

    data_dir: Path
    database_url: str
    sandbox: SandboxServer
    work: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHSYNC_", "SOPHTRON_"))}
        env.update(
            SOPHSYNC_DATA_DIR=str(self.data_dir),
            SOPHSYNC_DATABASE_URL=self.database_url,
            SOPHTRON_BASE_URL=self.sandbox.url,
            NO_COLOR="1",
            COLUMNS="200",
        )
        return env

    def run(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*SOPHSYNC, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.work,
            input=input if input is not None else "",
            env={**self.env, **(env or {})},
        )
        printed = result.stdout + result.stderr
        assert "Traceback" not in printed, printed
        for secret in SECRETS:
            assert secret not in printed, f"a secret was printed: {printed}"
        return result

    def core(self, clock: Callable[[], Any] | None = None) -> Core:
        settings = Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            sophtron_base_url=self.sandbox.url,
        )
        if clock is None:
            return Core.open(settings, migrate=True)
        return Core.open(settings, migrate=True, clock=clock)

    def admin(self, core: Core) -> Actor:
        return families.family_admin(core, families.families(core)[0].id)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert text in lines[0], lines[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'sophsync.db'}"
    return emptied(request.getfixturevalue("postgres_url"))


def _home(tmp_path: Path, url: str, sandbox: SandboxServer, with_credentials: bool) -> Home:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "work").mkdir(exist_ok=True)
    home = Home(tmp_path / "data", url, sandbox, tmp_path / "work")
    core = home.core()
    try:
        actor = families.create_family(core, "The Smiths", "admin@example.com", "a long password")
        if with_credentials:
            credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    finally:
        core.close()
    return home


@pytest.fixture
def bare(tmp_path: Path, sandbox: SandboxServer, request: pytest.FixtureRequest) -> Home:
    """A household on SQLite without Sophtron credentials."""
    return _home(tmp_path, _database_url("sqlite", tmp_path, request), sandbox, False)


@pytest.fixture
def home(tmp_path: Path, sandbox: SandboxServer, request: pytest.FixtureRequest) -> Home:
    """A household on SQLite with Sophtron credentials saved."""
    return _home(tmp_path, _database_url("sqlite", tmp_path, request), sandbox, True)


@pytest.fixture
def any_home(
    tmp_path: Path, sandbox: SandboxServer, backend: str, request: pytest.FixtureRequest
) -> Home:
    """A household with credentials, on SQLite and on PostgreSQL."""
    return _home(tmp_path, _database_url(backend, tmp_path, request), sandbox, True)


def write_answers(home: Home, values: Any, name: str = "answers.json") -> Path:
    path = home.work / name
    path.write_text(values if isinstance(values, str) else json.dumps(values))
    return path


def connect_with_answers(
    home: Home, bank: str, username: str, answers: Any = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    path = write_answers(home, ANSWERS_FILE if answers is None else answers)
    return home.run(
        "connect",
        bank,
        "--username",
        username,
        "--password-stdin",
        "--answers",
        str(path),
        *extra,
        input=PASSWORD + "\n",
    )


# --- credentials -------------------------------------------------------------------------------


def test_credentials_set_show_verify_remove(
    tmp_path: Path, sandbox: SandboxServer, backend: str, request: pytest.FixtureRequest
) -> None:
    home = _home(tmp_path, _database_url(backend, tmp_path, request), sandbox, False)
    saved = home.run(
        "credentials",
        "set",
        "--user-id",
        USER_ID,
        "--access-key-stdin",
        "--base-url",
        sandbox.url,
        input=ACCESS_KEY + "\n",
    )
    assert saved.returncode == 0, saved.stderr
    assert USER_ID in saved.stdout
    assert "Customer ID: " in saved.stdout

    shown = home.run("credentials", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["user_id"] == USER_ID
    assert status["base_url"] == sandbox.url
    assert status["customer_id"]
    assert status["verified_at"]
    assert "access_key" not in status
    table = home.run("credentials", "show")
    assert f"Base URL:    {sandbox.url}" in table.stdout

    verified = home.run("credentials", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["customer_id"] == status["customer_id"]

    refused = home.run("credentials", "remove")
    one_line_error(refused, 2, "--yes")
    removed = home.run("credentials", "remove", "--yes")
    assert removed.returncode == 0, removed.stderr
    one_line_error(home.run("credentials", "show"), 1, "No Sophtron credentials are saved")
    one_line_error(home.run("credentials", "verify"), 1, "No Sophtron credentials are saved")


def test_credentials_set_reads_the_environment(bare: Home) -> None:
    result = bare.run(
        "credentials",
        "set",
        "--json",
        env={"SOPHTRON_USER_ID": USER_ID, "SOPHTRON_ACCESS_KEY": ACCESS_KEY},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["user_id"] == USER_ID


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("bm90LXRoZS1yaWdodC1rZXktYXQtYWxsLTAxMjM0NTY=", "Sophtron rejected this User ID"),
        ("not base64 at all!", "base64"),
    ],
)
def test_a_bad_access_key_is_one_line(bare: Home, key: str, message: str) -> None:
    result = bare.run(
        "credentials", "set", "--user-id", USER_ID, "--access-key-stdin", input=key + "\n"
    )
    one_line_error(result, 2, message)
    assert key not in result.stdout + result.stderr
    one_line_error(bare.run("credentials", "show"), 1, "No Sophtron credentials")


def test_missing_credentials_is_one_line(bare: Home) -> None:
    one_line_error(bare.run("credentials", "set"), 2, "Sophtron User ID")
    one_line_error(
        bare.run("institutions", "search", "Sophtron"), 3, "No Sophtron credentials are saved"
    )


# --- institutions ------------------------------------------------------------------------------


def test_institutions_search(home: Home) -> None:
    found = home.run("institutions", "search", "Sophtron Bank", "--json")
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    names = {row["name"] for row in rows}
    assert {"Sophtron Bank", "Sophtron Bank NoMFA", "Sophtron Bank TokenRead"} <= names
    assert all(row["id"] for row in rows)
    table = home.run("institutions", "search", "Sophtron Bank Token")
    assert "Sophtron Bank TokenRead" in table.stdout
    one_line_error(home.run("institutions", "search", "x"), 2, "at least two characters")


# --- connect -----------------------------------------------------------------------------------


def test_connect_interactively_through_a_terminal(home: Home, tmp_path: Path) -> None:
    captchas = tmp_path / "captchas"
    transcript = io.StringIO()
    child = pexpect.spawn(
        SOPHSYNC[0],
        [*SOPHSYNC[1:], "connect", "--captcha-dir", str(captchas)],
        cwd=str(home.work),
        env={**home.env, "TERM": "xterm-kitty"},
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    child.logfile_read = transcript
    try:
        child.expect("Bank name")
        child.sendline("Sophtron")
        child.expect(r"institutions match 'Sophtron'")
        child.expect(r"(\d+)\. Sophtron Bank(  |\r)")
        number = child.match.group(1)
        child.expect("Which one")
        child.sendline(number)
        child.expect("Bank username")
        child.sendline("pty-user+accounts=2")
        child.expect("Bank password")
        child.sendline(PASSWORD)
        child.expect(r"The bank shows a captcha: (\S+\.png)")
        image = Path(child.match.group(1))
        child.expect("\x1b_G")  # shown inline with kitty's protocol
        child.expect("Type the text of the captcha")
        child.sendline("K7QX2cap")
        child.expect("Security question: What is your favorite color")
        child.sendline("blue-answer")
        child.expect("Where should the bank send a code")
        child.expect(r"(\d)\. Email me")
        email = child.match.group(1)
        child.expect("Choose")
        child.sendline(email)
        child.expect("Enter the")
        child.sendline("908172")
        child.expect("connected")
        child.expect("sophsync accounts link --all")
        child.expect(pexpect.EOF)
        printed = str(child.before)
    finally:
        child.close()
    assert child.exitstatus == 0, printed
    assert image.parent == captchas
    assert image.read_bytes().startswith(PNG_MAGIC)
    # Hidden input: the terminal shows neither the password nor the security answer.
    assert "Security question: What is your favorite color" in transcript.getvalue()
    assert PASSWORD not in transcript.getvalue()
    assert "blue-answer" not in transcript.getvalue()
    core = home.core()
    try:
        [view] = connect.list_connections(core, home.admin(core))
    finally:
        core.close()
    assert view.status is ConnectionStatus.CONNECTED
    assert view.institution_name == "Sophtron Bank"


def test_connect_with_an_answers_file(any_home: Home) -> None:
    captchas = any_home.work / "shots"
    result = connect_with_answers(
        any_home, "Sophtron Bank", "script-user", None, "--json", "--captcha-dir", str(captchas)
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["connection"]["status"] == "connected"
    assert out["connection"]["institution"] == "Sophtron Bank"
    assert out["accounts"]
    assert all(account["linked_account_id"] is None for account in out["accounts"])
    [image] = captchas.glob("*.png")
    assert image.read_bytes().startswith(PNG_MAGIC)

    table = connect_with_answers(
        any_home, "Sophtron Bank TokenRead", "phone-user", {"phone_confirmation": True}
    )
    assert table.returncode == 0, table.stderr
    assert "enter the code" in table.stderr
    assert "sophsync accounts link --all" in table.stdout


def test_connect_by_institution_id(home: Home) -> None:
    rows = json.loads(home.run("institutions", "search", "Sophtron Bank NoMFA", "--json").stdout)
    bank = next(row for row in rows if row["name"] == "Sophtron Bank NoMFA")
    result = connect_with_answers(home, bank["id"], "by-id", {}, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["connection"]["institution"] == "Sophtron Bank NoMFA"


@pytest.mark.parametrize(
    ("bank", "answers", "code", "message"),
    [
        ("No Such Bank Anywhere", {}, 2, "No institution matches 'No Such Bank Anywhere'"),
        ("Sophtron Bank Sec", {}, 2, "institutions match 'Sophtron Bank Sec'"),
        ("Sophtron Bank Captcha", "{not json", 2, "is not valid JSON"),
        ("Sophtron Bank Captcha", ["a list"], 2, "must hold a JSON object"),
        ("Sophtron Bank Captcha", {"capcha": "x"}, 2, "unknown key(s) capcha"),
        ("Sophtron Bank Captcha", {"captcha": 5}, 2, "captcha must be a text"),
        ("Sophtron Bank Token", {"token_method": 9}, 2, "token_method 9 is out of range"),
        ("Sophtron Bank Token", {"token_method": "pigeon"}, 2, "matches none"),
        ("Sophtron Bank Captcha", {}, 3, "there is no terminal"),
        ("Sophtron Bank SecurityQuestion", {"security_questions": "wrong"}, 1, "Sophtron Bank"),
    ],
)
def test_connect_bad_input_is_one_line(
    home: Home, bank: str, answers: Any, code: int, message: str
) -> None:
    path = write_answers(home, answers)
    result = home.run(
        "connect",
        bank,
        "--username",
        "bad-input",
        "--password-stdin",
        "--answers",
        str(path),
        input=PASSWORD + "\n",
    )
    one_line_error(result, code, message)


def test_connect_without_a_password_or_answers_file(home: Home) -> None:
    one_line_error(
        home.run("connect", "Sophtron Bank NoMFA", "--username", "u"), 2, "--password-stdin"
    )
    one_line_error(
        home.run("connect", "Sophtron Bank NoMFA", "--answers", str(home.work / "missing.json")),
        2,
        "Cannot read the answers file",
    )


# --- connections -------------------------------------------------------------------------------


def connected(home: Home, name: str, username: str) -> str:
    """A bank connected through the core, on the CLI's database: its id."""
    core = home.core()
    try:
        return str(connect_bank(core, home.admin(core), name=name, username=username).id)
    finally:
        core.close()


def test_connections_list_show_check(any_home: Home) -> None:
    cid = connected(any_home, "Sophtron Bank NoMFA", "lister+accounts=2")
    listed = any_home.run("connections", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["institution"], row["status"]) == (
        int(cid),
        "Sophtron Bank NoMFA",
        "connected",
    )
    table = any_home.run("connections", "list")
    assert "Sophtron Bank NoMFA" in table.stdout

    shown = json.loads(any_home.run("connections", "show", cid, "--json").stdout)
    assert shown["connection"]["id"] == int(cid)
    assert len(shown["accounts"]) == 2
    assert {a["linked_account_id"] for a in shown["accounts"]} == {None}
    assert "Accounts at the bank" in any_home.run("connections", "show", cid).stdout

    checked = any_home.run("connections", "check", cid, "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["status"] == "connected"
    nothing = any_home.run("connections", "reconnect", cid)
    assert nothing.returncode == 0
    assert "nothing to do" in nothing.stdout


def test_connections_remove(home: Home) -> None:
    cid = connected(home, "Sophtron Bank NoMFA", "remover")
    one_line_error(home.run("connections", "remove", cid), 2, "--yes")
    removed = home.run("connections", "remove", cid, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(home.run("connections", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    "args", [["show", "999"], ["check", "999"], ["reconnect", "999"], ["remove", "999", "--yes"]]
)
def test_unknown_connection_is_one_line(home: Home, args: list[str]) -> None:
    one_line_error(home.run("connections", *args), 1, "999")


def test_reconnect_after_the_bank_refused_the_login(home: Home) -> None:
    refused = home.run(
        "connect",
        "Sophtron Bank NoMFA",
        "--username",
        "refused",
        "--password-stdin",
        input="wrong\n",
    )
    assert refused.returncode == 1
    assert "reconnect" in refused.stderr
    cid = json.loads(home.run("connections", "list", "--json").stdout)[0]["id"]
    one_line_error(home.run("connections", "reconnect", str(cid)), 2, "--username")
    result = home.run(
        "connections",
        "reconnect",
        str(cid),
        "--username",
        "refused",
        "--password-stdin",
        "--json",
        input=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["connection"]["status"] == "connected"


def test_reconnect_answers_a_refresh_that_asks_again(
    tmp_path: Path, make_sandbox: Callable[..., SandboxServer]
) -> None:
    server = make_sandbox()
    home = _home(tmp_path, f"sqlite:///{tmp_path / 'data' / 'sophsync.db'}", server, True)
    clock = Clock()
    core = home.core(clock)
    try:
        actor = home.admin(core)
        view = connect_and_link(
            core, actor, name="Sophtron Bank SecurityQuestion", username="again+mfa-again"
        )
        poller = sync.Poller(interval=0.0, maximum=0.0, sleep=lambda seconds: None)
        sync.sync_connection(core, view.id, poller=poller)
        advance(server, clock, 2)
        sync.sync_connection(core, view.id, poller=poller)
        assert connect.get_connection(core, actor, view.id).status is (
            ConnectionStatus.REQUIRES_UPDATE
        )
    finally:
        core.close()

    cid = str(view.id)
    check = home.run("connections", "check", cid)
    assert check.returncode == 3
    assert "requires_update" in check.stdout
    missing = home.run("connections", "reconnect", cid, "--answers", str(write_answers(home, {})))
    one_line_error(missing, 3, "favorite color")
    answered = home.run(
        "connections",
        "reconnect",
        cid,
        "--answers",
        str(write_answers(home, {"security_questions": ["blue-answer"]})),
        "--json",
    )
    assert answered.returncode == 0, answered.stderr
    out = json.loads(answered.stdout)
    assert out["connection"]["status"] == "connected"
    assert {a["linked_account_id"] is not None for a in out["accounts"]} == {True}
