"""Schemathesis over the OpenAPI description: no input makes the API answer 500."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sophsync.core import credentials, families, tokens
from sophsync.core.app import Core
from sophsync.jobs import LocalQueue
from sophsync.settings import Settings
from sophsync.web import create_app
from tests.conftest import ACCESS_KEY, USER_ID
from tests.web.conftest import WebServer


@pytest.fixture
def token(web: WebServer) -> str:
    """An admin's token for a family with credentials saved."""
    admin = families.create_family(web.core, "Fuzz", "fuzz@example.com", "a long password")
    credentials.save_credentials(web.core, admin, USER_ID, ACCESS_KEY)
    return tokens.create_token(web.core, admin, "fuzz")[1]


def _openapi() -> dict[str, Any]:
    """The API's OpenAPI description (the same for every database and data)."""
    with tempfile.TemporaryDirectory() as folder:
        core = Core.open(Settings(data_dir=Path(folder)))
        try:
            return create_app(core, queue=LocalQueue(core)).openapi()
        finally:
            core.close()


schema = schemathesis.openapi.from_dict(_openapi())


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_input_makes_a_server_error(case: Any, web: WebServer, token: str) -> None:
    response = case.call(base_url=web.url, headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=[not_a_server_error])
