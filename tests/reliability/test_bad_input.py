"""Bad input from both sides of the wire: whatever Sophtron sends back, the SDK answers with a
model or with one of its documented errors; whatever a client sends the sandbox, the sandbox
answers with a JSON error and never a server error.

The API's own input is fuzzed by tests/web/test_fuzz.py (schemathesis over the OpenAPI
description); the SDK's field parsers one by one by tests/test_parsing.py. Here the whole reply
is arbitrary: every call of the SDK reads JSON of any shape, wrong types, huge numbers, odd
strings and missing fields, and then everything the sync reads of the model (currency, kind,
signed amount, the job's status and prompt) must either work or raise a ``SophtronError``.

Hypothesis runs derandomized with modest example counts, so that CI is reproducible and the
tests stay bounded.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sophsync.sandbox import SandboxServer
from sophsync.sophtron import _calls, mfa
from sophsync.sophtron.auth import sign
from sophsync.sophtron.errors import SophtronError
from sophsync.sophtron.models import (
    Account,
    Customer,
    Institution,
    Job,
    JobTracker,
    Member,
    SophtronModel,
    Transaction,
    UserInstitution,
)
from tests.conftest import ACCESS_KEY, USER_ID, sandbox_config

MODELS: tuple[type[SophtronModel], ...] = (
    Account,
    Customer,
    Institution,
    Job,
    JobTracker,
    Member,
    Transaction,
    UserInstitution,
)

BOUNDED = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Context:
    user_id = USER_ID


def _argument(name: str, annotation: str) -> Any:
    if "Sequence[str]" in annotation or "list[str]" in annotation:
        return ["an answer"]
    if "date" in annotation:
        return dt.date(2026, 1, 1)
    if annotation.startswith("bool"):
        return True
    return f"{name}-1"


#: Builders that take one of several optional arguments.
EXTRA: dict[str, dict[str, Any]] = {"update_job_token_input": {"token_input": "123456"}}


def every_call() -> list[_calls.Call[Any]]:
    """Every call the SDK can make (one of each builder, with plain arguments), and the calls
    they fall back to on a 404."""
    built: list[_calls.Call[Any]] = []
    for name, builder in vars(_calls).items():
        if name.startswith("_") or not inspect.isfunction(builder):
            continue
        if builder.__module__ != _calls.__name__:
            continue
        parameters = list(inspect.signature(builder).parameters.values())
        if not parameters or parameters[0].name != "ctx":
            continue
        if any("Prompt" in str(p.annotation) for p in parameters):
            continue  # answering needs a prompt: covered through the calls it builds
        arguments = EXTRA.get(name, {}) | {
            p.name: _argument(p.name, str(p.annotation))
            for p in parameters[1:]
            if p.default is inspect.Parameter.empty
        }
        call = builder(Context(), **arguments)
        while call is not None:
            built.append(call)
            call = call.on_not_found
    return built


CALLS = every_call()


def test_every_call_of_the_sdk_is_fuzzed() -> None:
    """The builders found cover the v1 and the v2 API (a renamed module would find none)."""
    routes = {call.route for call in CALLS}
    assert len(routes) >= 30, routes
    assert any(r.startswith("POST Job/") for r in routes)
    assert any(r.startswith("GET v2/") for r in routes)


# --- what Sophtron might send ---------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "null",
        "NaN",
        "Infinity",
        "-0",
        "1e999",
        "9" * 400,
        "$-1,234.5.6",
        "(12.00)",
        "2026-02-30",
        "13/45/2026",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59.9999999+14:00",
        "\x00",
        "\u202e\ufeff",
        "dollars",
        "€",
        "[1, 2",
        '["a", 1, null]',
        "true",
        "-1",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | ODD_TEXT
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def model_like(draw: st.DrawFn, model: type[SophtronModel] | None = None) -> dict[str, Any]:
    """An object with some of a model's own keys (any spelling the SDK reads), odd values."""
    model = model or draw(st.sampled_from(MODELS))
    keys = sorted(model._key_index)  # every spelling the model reads
    chosen = draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True))
    value = st.one_of(SCALARS, JSONISH)
    return {draw(st.sampled_from([key, key.upper()])): draw(value) for key in chosen}


def bodies() -> st.SearchStrategy[str]:
    as_json = st.one_of(
        JSONISH,
        model_like(),
        st.lists(model_like(), max_size=3),
        st.dictionaries(st.sampled_from(["Accounts", "Job", "data", "Transactions"]), JSONISH),
    ).map(json.dumps)
    return st.one_of(as_json, st.text(max_size=40), ODD_TEXT)


def read_everything(value: Any) -> None:
    """Read what the sync reads of a parsed model: its properties, and for a job its status."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, SophtronModel):
            continue
        own = [cls for cls in type(item).__mro__ if issubclass(cls, SophtronModel)]
        for name in {
            name for cls in own for name, v in vars(cls).items() if isinstance(v, property)
        }:
            getattr(item, name)
        if isinstance(item, Job):
            mfa.job_status(item)


def parse_reply(call: _calls.Call[Any], text: str) -> None:
    reply = _calls.Reply(200, text, call.route)
    result: Any = call.parse(reply)
    while isinstance(result, _calls.Call):
        result = result.parse(_calls.Reply(200, text, result.route))
    read_everything(result)


@BOUNDED
@given(call=st.sampled_from(CALLS), text=bodies())
@example(call=CALLS[0], text="1e999999999")
def test_any_reply_gives_a_model_or_a_sophtron_error(call: _calls.Call[Any], text: str) -> None:
    try:
        parse_reply(call, text)
    except SophtronError as error:
        told = str(error)
    else:
        told = "parsed"
    assert told, "a SophtronError tells the person what happened"


@BOUNDED
@given(data=st.data(), model=st.sampled_from(MODELS))
@example(data={"AccountID": "1", "BalanceCurrency": "dollars"}, model=Account)
@example(data={"TransactionID": "1", "Amount": "1e40", "Currency": "zz"}, model=Transaction)
def test_a_model_read_from_any_object_gives_values_or_a_sophtron_error(
    data: Any, model: type[SophtronModel]
) -> None:
    """The single-object parser of each model, on objects shaped like Sophtron's."""
    given_object = data if isinstance(data, dict) else data.draw(model_like(model))
    call = _calls.Call("GET", "x", _calls._model(model))
    try:
        parse_reply(call, json.dumps(given_object))
    except SophtronError as error:
        told = str(error)
    else:
        told = "parsed"
    assert told, "a SophtronError tells the person what happened"


# --- what a client might send the sandbox ---------------------------------------------------

SANDBOX_PATHS = [
    "Institution/HealthCheckAuth",
    "Institution/GetInstitutionByName",
    "UserInstitution/CreateUserInstitution",
    "UserInstitution/GetUserInstitutionAccounts",
    "UserInstitution/UpdateUserInstitution",
    "Job/GetJobInformationByID",
    "Job/UpdateJobSecurityAnswer",
    "Job/UpdateJobTokenInput",
    "Job/UpdateJobCaptcha",
    "Transaction/GetTransactionsByTransactionDate",
    "v2/institutions",
    "v2/customers",
    "v2/customers/{x}",
    "v2/customers/{x}/members",
    "v2/customers/{x}/members/{x}/accounts",
    "v2/customers/{x}/accounts/{x}/transactions",
    "v2/job/{x}",
    "v2/job/{x}/challenge/{x}",
    "NoSuch/Route",
    "",
]
SEGMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#%"), min_size=0, max_size=12
)


@st.composite
def sandbox_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes, bool]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    template = draw(st.sampled_from(SANDBOX_PATHS))
    path = template
    while "{x}" in path:
        path = path.replace("{x}", quote(draw(SEGMENT), safe="") or "1", 1)
    query = draw(
        st.dictionaries(st.sampled_from(["StartDate", "EndDate", "q", "x"]), SEGMENT, max_size=2)
    )
    if query:
        path += "?" + str(httpx.QueryParams(query))
    body = draw(
        st.one_of(
            st.binary(max_size=64),
            JSONISH.map(lambda v: json.dumps(v).encode()),
            model_like().map(lambda v: json.dumps(v).encode()),
        )
    )
    headers = draw(
        st.dictionaries(
            st.sampled_from(["Content-Type", "Accept", "X-Anything", "Authorization"]),
            # Any value HTTP/1.1 can carry (no surrounding blanks, no control characters).
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
                str.strip
            ),
            max_size=2,
        )
    )
    signed = draw(st.booleans())
    return method, path, headers, body, signed


@pytest.fixture(scope="module")
def fuzzed_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of its own: fuzzed requests create logins and jobs that no other test expects."""
    with SandboxServer(sandbox_config()) as server:
        yield server


def _send(
    server: SandboxServer, request: tuple[str, str, dict[str, str], bytes, bool]
) -> httpx.Response:
    method, path, headers, body, signed = request
    url = f"{server.url}/{path}"
    if signed:
        headers = {**headers, "Authorization": sign(USER_ID, ACCESS_KEY, method, url)}
    with httpx.Client(timeout=30) as client:
        return client.request(method, url, headers=headers, content=body)


@settings(BOUNDED, max_examples=120)
@given(request=sandbox_requests())
@example(request=("POST", "Job/UpdateJobCaptcha", {}, b"[]", True))
@example(request=("POST", "UserInstitution/CreateUserInstitution", {}, b'{"UserName": 1}', True))
@example(request=("GET", "v2/job/%00", {}, b"", True))
def test_the_sandbox_answers_any_request_with_a_json_error_not_a_crash(
    fuzzed_sandbox: SandboxServer, request: tuple[str, str, dict[str, str], bytes, bool]
) -> None:
    response = _send(fuzzed_sandbox, request)
    assert response.status_code < 500, (request, response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict), (request, response.text)
        assert isinstance(body.get("Message"), str), (request, body)
        assert body["Message"], (request, body)


def test_the_sandbox_fuzzing_reaches_the_handlers(fuzzed_sandbox: SandboxServer) -> None:
    """Signed requests get past the signature check, so the handlers themselves are fuzzed."""
    ok = _send(fuzzed_sandbox, ("GET", "Institution/HealthCheckAuth", {}, b"", True))
    refused = _send(fuzzed_sandbox, ("GET", "Institution/HealthCheckAuth", {}, b"", False))
    assert ok.status_code == 200, ok.text
    assert refused.status_code == 401, refused.text
