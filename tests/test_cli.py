"""The command line, run as a subprocess: help everywhere, docs complete, sandbox and demo work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from sophsync.cli import cli
from sophsync.sophtron import Client
from tests.conftest import ACCESS_KEY, USER_ID, wait_until

ROOT = Path(__file__).resolve().parents[1]
SOPHSYNC = [sys.executable, "-m", "sophsync"]


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SOPHSYNC, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, **kwargs
    )


def all_commands(group: click.Group = cli, prefix: str = "") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        names.append(f"{prefix}{name}")
        if isinstance(command, click.Group):
            names.extend(all_commands(command, f"{prefix}{name} "))
    return names


def test_every_command_has_help_and_is_documented() -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    commands = all_commands()
    assert {"sandbox", "demo"} <= set(commands)
    runner = CliRunner()
    for name in commands:
        result = runner.invoke(cli, [*name.split(), "--help"], prog_name="sophsync")
        assert result.exit_code == 0, result.output
        assert f"Usage: sophsync {name}" in result.output
        command = cli.get_command(click.Context(cli), name.split()[0])
        assert command is not None
        assert (command.help or "").strip(), f"{name} has no help text"
        assert f"## `sophsync {name}`" in docs, f"docs/cli.md does not document {name}"


def test_version_and_top_level_help() -> None:
    assert run("--version").stdout.startswith("sophsync, version ")
    result = run("--help")
    assert result.returncode == 0
    assert "sandbox" in result.stdout
    assert "demo" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sandbox", "--faults", "explode=1"], "unknown fault 'explode'"),
        (["sandbox", "--rate-limit", "ten/MIN"], "must look like 60/MIN"),
        (["sandbox", "--user-id", "u", "--access-key", "not base64!"], "not valid base64"),
        (["sandbox", "--user-id", "u"], "Give both --user-id and --access-key"),
        (["sandbox", "--today", "21/11/2026"], "--today"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def started(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``sophsync ARGS`` running in the background, its output kept for the test."""
    return subprocess.Popen(
        [*SOPHSYNC, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


def test_sandbox_command_serves_sophtron(unused_port: int) -> None:
    env = {**os.environ, "SOPHTRON_USER_ID": USER_ID, "SOPHTRON_ACCESS_KEY": ACCESS_KEY}
    process = started(
        "sandbox",
        "--port",
        str(unused_port),
        "--job-seconds",
        "0",
        "--seed",
        "3",
        "--today",
        "2026-11-21",
        "--rate-limit",
        "100/MIN",
        env=env,
    )
    root = f"http://127.0.0.1:{unused_port}"
    try:
        _wait_for(f"{root}/_sandbox", process)
        info = httpx.get(f"{root}/_sandbox").json()
        assert info["seed"] == 3
        assert info["today"] == "2026-11-21"
        assert info["rate_limit"] == "100/MIN"
        assert info["institutions"] >= 1000
        with Client(USER_ID, ACCESS_KEY, base_url=f"{root}/api", poll_interval=0.01) as client:
            assert client.health_check_auth() == "this is online."
            bank = client.get_institution_by_name("Sophtron Bank NoMFA")[0]
            tracker = client.create_user_institution(bank.institution_id, "cli-user", "pw")
            assert client.wait_for_job(tracker.job_id).state.value == "succeeded"
            assert len(client.get_user_institution_accounts(tracker.login_id or "")) == 6
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert f"Sophtron sandbox: http://127.0.0.1:{unused_port}/api" in out
    assert "(as given)" in out
    assert ACCESS_KEY not in out + err


def test_sandbox_command_prints_fresh_credentials_when_none_given(unused_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPHTRON_")}
    process = started("sandbox", "--port", str(unused_port), env=env)
    try:
        _wait_for(f"http://127.0.0.1:{unused_port}/_sandbox", process)
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    user_id = re.search(r"User ID:\s+(\S+)", out)
    key = re.search(r"Access Key:\s+(\S+)", out)
    assert user_id
    assert key
    # The printed pair really works against a sandbox.
    Client(user_id.group(1), key.group(1))


def test_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    result = run("demo", "--output", str(tmp_path), "--today", "2026-11-21")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())  # tables wrap at the terminal width
    for expected in (
        "Captcha",
        "Security question",
        "Where should the bank send a code",
        "Enter the Token",
        "Connected.",
        "Linked 6 accounts",
        "A week later",
        "Accounts in sophsync",
        "Primary",
        "Sync runs",
        "Done",
    ):
        assert expected in out, f"{expected!r} missing from the demo output"
    assert (tmp_path / "captcha.png").read_bytes().startswith(b"\x89PNG")
    assert re.search(r"6 accounts, \d+ transactions, \d+ Sophtron requests", out)
    assert "equals the sandbox's truth" in out
    assert (tmp_path / "data" / "sophsync.db").exists()
    assert "exported again: the same bytes" in out
    for name in ("csv", "ofx", "qif", "beancount", "journal"):
        assert (tmp_path / "exports" / f"household.{name}").stat().st_size > 1000


def test_serve_with_the_sandbox_runs_the_web_app(unused_port: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHTRON_", "SOPHSYNC_"))}
    env["SOPHSYNC_DATA_DIR"] = str(tmp_path)
    # One thread for the pages' database work: the bank search runs beside it.
    process = started("serve", "--sandbox", "--threads", "1", "--port", str(unused_port), env=env)
    root = f"http://127.0.0.1:{unused_port}"
    try:
        _wait_for(f"{root}/healthz", process)
        assert httpx.get(f"{root}/readyz").json()["status"] == "ok"
        with httpx.Client(base_url=root, timeout=30) as client:
            created = client.post(
                "/api/v1/setup",
                json={
                    "family": "Serve",
                    "email": "serve@example.com",
                    "password": "a long password",
                },
            )
            assert created.status_code == 201, created.text
            # Empty fields: the sandbox's credentials, as --sandbox promises.
            saved = client.put("/api/v1/credentials", json={})
            assert saved.status_code == 200, saved.text
            found = client.get("/api/v1/institutions", params={"q": "Sophtron Bank"}).json()
            assert len(found) == 7
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert "Sandbox Sophtron at" in out
    assert "Traceback" not in err


def web_processes(pid: int) -> list[int]:
    """The web processes ``serve --workers`` started: its children that multiprocessing spawned
    (not its resource tracker)."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [
        child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def test_serve_with_several_web_processes_shares_the_port_and_runs_jobs_once(
    unused_port: int, tmp_path: Path
) -> None:
    """--workers 2: two web processes answer on one port with one another's sessions, a sync
    asked of either runs in the parent's worker, a web process that dies is replaced, and
    Ctrl+C stops them all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPHTRON_", "SOPHSYNC_"))}
    env["SOPHSYNC_DATA_DIR"] = str(tmp_path)
    process = started(
        "serve",
        "--sandbox",
        "--workers",
        "2",
        "--threads",
        "2",
        "--port",
        str(unused_port),
        env=env,
    )
    root = f"http://127.0.0.1:{unused_port}"
    api = f"{root}/api/v1"
    try:
        _wait_for(f"{root}/healthz", process)
        wait_until(lambda: len(web_processes(process.pid)) == 2, "two web processes")
        first = web_processes(process.pid)
        with httpx.Client(timeout=30) as admin:
            user = {"family": "Serve", "email": "serve@example.com", "password": "a long password"}
            assert admin.post(f"{api}/setup", json=user).status_code == 201
            assert admin.put(f"{api}/credentials", json={}).status_code == 200
            found = admin.get(f"{api}/institutions", params={"q": "Sophtron Bank NoMFA"}).json()
            bank = next(item for item in found if item["name"] == "Sophtron Bank NoMFA")
            login = {"institution_id": bank["institution_id"], "username": "u", "password": "p"}
            connection = admin.post(f"{api}/connections", json=login).json()
            poll = f"{api}/connections/{connection['id']}/poll"
            wait_until(lambda: admin.post(poll).json()["status"] == "connected", "connected")
            found = admin.get(f"{api}/provider-accounts").json()
            for provider in found:
                link = {"provider_account_id": provider["id"], "history_days": 30}
                assert admin.post(f"{api}/links", json=link).status_code == 201
            cookies = admin.cookies

        def fresh(method: str, path: str, **kwargs: object) -> httpx.Response:
            """A request on a connection of its own, so that either web process may take it."""
            with httpx.Client(cookies=cookies, timeout=30) as client:
                return client.request(method, f"{api}{path}", **kwargs)  # type: ignore[arg-type]

        queued = fresh("POST", "/sync", json={"connection_id": connection["id"]})
        assert queued.status_code == 202, queued.text
        wait_until(
            lambda: [run["status"] for run in fresh("GET", "/sync-runs").json()] == ["succeeded"],
            "the sync ran, once",
        )
        transactions = fresh("GET", "/transactions", params={"limit": 10}).json()["items"]
        assert len(transactions) == 10
        assert all(fresh("GET", "/me").status_code == 200 for _ in range(20))

        os.kill(first[0], signal.SIGKILL)
        assert all(fresh("GET", "/me").status_code == 200 for _ in range(10))
        wait_until(
            lambda: len(now := web_processes(process.pid)) == 2 and first[0] not in now,
            "the dead web process replaced",
        )
        assert fresh("GET", "/me").status_code == 200
        serving = web_processes(process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert not any(Path(f"/proc/{pid}").exists() for pid in [*first, *serving])
    assert "sophsync on http://127.0.0.1" in out
    assert "Traceback" not in err


def test_serve_refuses_no_worker_on_sqlite_and_no_web_process_or_thread(tmp_path: Path) -> None:
    result = run("--data-dir", str(tmp_path), "serve", "--no-worker")
    assert result.returncode == 2
    assert "--no-worker needs PostgreSQL" in result.stderr
    result = run("--data-dir", str(tmp_path), "serve", "--workers", "0")
    assert result.returncode == 2
    assert "'--workers': 0 is not in the range 1<=x<=64" in result.stderr
    for threads in ("0", "65"):
        result = run("--data-dir", str(tmp_path), "serve", "--threads", threads)
        assert result.returncode == 2
        assert f"'--threads': {threads} is not in the range 1<=x<=64" in result.stderr
