"""Shared fixtures: a real sandbox on 127.0.0.1 and SDK clients pointed at it."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from sophsync.sandbox import SandboxConfig, SandboxServer
from sophsync.sophtron import AsyncClient, Client, RetryPolicy
from sophsync.sophtron.auth import sign

# TV1 of the reference: a made-up developer account.
USER_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
ACCESS_KEY = "c2FuZGJveC1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmM="
# A second developer account on the same sandbox (for isolation tests).
OTHER_USER_ID = "8d0d9991-0000-4000-8000-000000000001"
OTHER_ACCESS_KEY = (
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
)
TODAY = dt.date(2026, 11, 21)
SEED = 7

#: Fast polling for tests against a sandbox whose jobs take no time.
FAST = {"poll_interval": 0.01, "max_poll_interval": 0.05}


def sandbox_config(**overrides: Any) -> SandboxConfig:
    settings: dict[str, Any] = {
        "users": {USER_ID: ACCESS_KEY, OTHER_USER_ID: OTHER_ACCESS_KEY},
        "seed": SEED,
        "today": TODAY,
    }
    settings.update(overrides)
    return SandboxConfig(**settings)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """One sandbox for the whole session (jobs take no time). Use unique bank usernames."""
    with SandboxServer(sandbox_config()) as server:
        yield server


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start a dedicated sandbox with config overrides; stopped after the test."""
    servers: list[SandboxServer] = []

    def start(**overrides: Any) -> SandboxServer:
        server = SandboxServer(sandbox_config(**overrides)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[Client]:
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as sophtron:
        yield sophtron


@pytest.fixture
async def async_client(sandbox: SandboxServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as sophtron:
        yield sophtron


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def signed_request(
    server: SandboxServer,
    method: str,
    path: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    user_id: str = USER_ID,
    access_key: str = ACCESS_KEY,
    sign_url: str | None = None,
) -> httpx.Response:
    """A raw HTTP request to ``{server.url}/{path}``, signed the official way (or over
    ``sign_url`` when given, to imitate other clients' signing rules)."""
    url = f"{server.url}/{path.lstrip('/')}"
    header = sign(user_id, access_key, method, sign_url if sign_url is not None else url)
    return httpx.request(
        method, url, json=json, content=content, headers={"Authorization": header}, timeout=30
    )


def admin(server: SandboxServer, method: str, action: str, **kwargs: Any) -> Any:
    """Call a ``/_sandbox/*`` admin route and return its JSON."""
    response = httpx.request(method, f"{server.root}/_sandbox/{action}", timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def no_retry() -> RetryPolicy:
    return RetryPolicy(attempts=1)


@pytest.fixture
def unused_port() -> int:
    """A TCP port that was free a moment ago, for servers started as subprocesses."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """Ask processes (workers, servers) to finish and exit with SIGTERM. One still running after
    ``timeout`` seconds fails the test (``TimeoutExpired``), and is killed so that it does not
    outlive it."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    try:
        for process in processes:
            process.wait(timeout)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)


def wait_until(
    check: Callable[[], object], what: str = "the condition", seconds: float = 30
) -> None:
    """Ask ``check`` every 50 ms until it is true; fail, naming ``what``, after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached in {seconds:g} s")
        time.sleep(0.05)
