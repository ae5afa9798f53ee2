"""Every output reads the local copy only: exports, a Firefly III push and SimpleFIN fetches send
no request to Sophtron and spend none of the household's monthly budget."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sophsync.bridges import simplefin
from sophsync.core import quota
from sophsync.exporters import files, firefly
from sophsync.sandbox import SandboxServer
from tests.outputs.conftest import Household
from tests.outputs.firefly_standin import FireflyStandIn, load_spec
from tests.outputs.test_firefly import TOKEN
from tests.web.conftest import WebServer


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def standin() -> Iterator[FireflyStandIn]:
    with FireflyStandIn(load_spec(), TOKEN) as server:
        yield server
    assert server.violations == []


def sophtron_requests(sandbox: SandboxServer) -> Any:
    return httpx.get(f"{sandbox.root}/_sandbox/stats", timeout=30).json()["total"]


def test_outputs_never_call_sophtron(
    household: Household,
    engine_sandbox: SandboxServer,
    standin: FireflyStandIn,
    tmp_path: Path,
) -> None:
    core, admin = household.core, household.admin
    before = sophtron_requests(engine_sandbox)
    spent = quota.usage(core, admin.family_id)
    assert before > 0  # the household was connected and synced through this sandbox

    for fmt in files.FORMATS:
        out = io.StringIO()
        files.write(files.prepare(core, admin), fmt, out)
        assert len(out.getvalue()) > 10_000
    with firefly.FireflyClient(standin.url, TOKEN) as api:
        report = firefly.push(core, admin, api, tmp_path / "firefly.json")
    assert report.created > 0
    server = WebServer(core).start()
    try:
        made = simplefin.create_setup_token(core, admin, server.url, "reader")
        access = httpx.post(made.claim_url, timeout=30).text
        parts = urlsplit(access)
        user, password = parts.username, parts.password
        assert user is not None
        assert password is not None
        answer = httpx.get(
            f"{server.url}/simplefin/access/accounts",
            params={"pending": "1"},
            auth=(user, password),
            timeout=60,
        )
        assert answer.status_code == 200
        assert len(answer.json()["accounts"]) == 12
    finally:
        server.stop()

    assert sophtron_requests(engine_sandbox) == before
    assert quota.usage(core, admin.family_id) == spent
