"""Fault injection and rate limiting in the sandbox, and how the SDK copes with both, observed
through ``/_sandbox/stats``."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sophsync.sandbox import FaultSpec, RateLimit, SandboxServer
from sophsync.sandbox.faults import FaultInjector
from sophsync.sophtron import (
    Client,
    MalformedResponse,
    RateLimited,
    RetryPolicy,
    ServerError,
    SophtronConnectionError,
)
from tests.conftest import (
    ACCESS_KEY,
    FAST,
    OTHER_ACCESS_KEY,
    OTHER_USER_ID,
    SEED,
    USER_ID,
    admin,
    signed_request,
)

MakeSandbox = Callable[..., SandboxServer]

NOMFA = "926623ca-5952-4921-8f77-2023f1cdde8e"
SEARCH = "Institution/GetInstitutionByName"
CREATE = "UserInstitution/CreateUserInstitution"
HEALTH = "Institution/HealthCheckAuth"


# --- helpers -------------------------------------------------------------------------------------


def stats(server: SandboxServer) -> dict[str, Any]:
    return admin(server, "GET", "stats")


def route_counts(server: SandboxServer, route: str) -> dict[str, int]:
    """Status counts of the one stats route whose name ends with ``route`` (any case)."""
    found = [
        counts
        for name, counts in stats(server)["routes"].items()
        if name.lower().endswith(route.lower())
    ]
    assert len(found) <= 1, found
    return found[0] if found else {}


def search(server: SandboxServer, **kwargs: Any) -> httpx.Response:
    return signed_request(
        server, "POST", SEARCH, json={"InstitutionName": "Sophtron Bank NoMFA"}, **kwargs
    )


def sdk(
    server: SandboxServer, retry: RetryPolicy, sleep: Callable[[float], None] | None = None
) -> Client:
    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return Client(
        USER_ID, ACCESS_KEY, base_url=server.url, retry=retry, timeout=10, **FAST, **extra
    )


def create(sophtron: Client, username: str) -> Any:
    return sophtron.create_user_institution(NOMFA, username, "asdf")


# --- parsing the options -------------------------------------------------------------------------


def test_fault_spec_parses_the_documented_forms() -> None:
    spec = FaultSpec.parse("429=0.05,500=0.02,drop=0.01")
    assert spec.rates == {"429": 0.05, "500": 0.02, "drop": 0.01}
    assert spec.retry_after == 1.0
    assert spec.slow_seconds == 2.0

    every = FaultSpec.parse(
        " 502 = 0.1 , SLOW=0.2, malformed=0.05, 503=0.1 , retry-after=3, slow-seconds=0.5 "
    )
    assert every.rates == {"502": 0.1, "slow": 0.2, "malformed": 0.05, "503": 0.1}
    assert every.retry_after == 3.0
    assert every.slow_seconds == 0.5

    assert FaultSpec.parse("500=1").rates == {"500": 1.0}
    assert FaultSpec.parse("500=0").rates == {"500": 0.0}
    assert FaultSpec.parse("retry-after=0.2").retry_after == 0.2
    assert FaultSpec.parse("").rates == {}
    for text in ("429=0.05,500=0.02,drop=0.01", "slow=1,slow-seconds=0.5", "429=1,retry-after=7"):
        spec = FaultSpec.parse(text)
        assert FaultSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    "text",
    [
        "500=0.5,502=0.5",
        "429=0.25,500=0.25,502=0.25,drop=0.25",
        "429=0.33,500=0.56,502=0.11",
        "500=0.7,502=0.2,503=0.1",
    ],
)
def test_fault_rates_adding_up_to_exactly_one_are_accepted(text: str) -> None:
    spec = FaultSpec.parse(text)
    assert len(spec.rates) == text.count("=")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("boom=0.1", "boom"),
        ("500=0.1,teapot=0.2", "teapot"),
        ("500=1.5", "1.5"),
        ("drop=2", "drop"),
        ("502=-0.1", "-0.1"),
        ("500=abc", "abc"),
        ("500", "500"),
        ("retry-after=-1", "retry-after"),
        ("500=0.6,502=0.6", "more than 1"),
        ("429=0.5,500=0.3,drop=0.3", "more than 1"),
    ],
)
def test_fault_spec_rejects_bad_parts_by_name(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        FaultSpec.parse(text)
    assert named in str(caught.value)


def test_rate_limit_parses_the_documented_forms() -> None:
    assert RateLimit.parse("60/MIN") == RateLimit(60, 60.0)
    assert RateLimit.parse("5/SEC") == RateLimit(5, 1.0)
    assert RateLimit.parse("100/HOUR") == RateLimit(100, 3600.0)
    assert RateLimit.parse("10000/DAY") == RateLimit(10000, 86400.0)
    assert RateLimit.parse(" 5/min ") == RateLimit(5, 60.0)
    for text in ("60/MIN", "5/SEC", "100/HOUR", "10000/DAY"):
        assert str(RateLimit.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("abc/MIN", "abc"),
        ("10/WEEK", "WEEK"),
        ("0/MIN", "0/MIN"),
        ("-5/MIN", "-5"),
        ("10", "10"),
        ("/MIN", "/MIN"),
    ],
)
def test_rate_limit_rejects_bad_parts_by_name(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        RateLimit.parse(text)
    assert named in str(caught.value)


# --- each fault on the wire ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_error_faults_answer_every_api_request(make_sandbox: MakeSandbox, code: int) -> None:
    server = make_sandbox(faults=FaultSpec.parse(f"{code}=1"))
    for _ in range(3):
        response = search(server)
        assert response.status_code == code
        assert isinstance(response.json()["Message"], str)
    assert signed_request(server, "GET", HEALTH).status_code == code
    assert signed_request(server, "GET", "v2/customers").status_code == code
    # Routing and authentication come first.
    assert signed_request(server, "POST", "Institution/Nothing", json={}).status_code == 404
    assert httpx.get(f"{server.url}/{HEALTH}", timeout=10).status_code == 401
    # Admin routes are never faulted.
    assert admin(server, "GET", "")["faults"].startswith(f"{code}=1")

    seen = stats(server)
    assert route_counts(server, SEARCH) == {str(code): 3}
    assert route_counts(server, HEALTH) == {str(code): 1, "401": 1}
    assert route_counts(server, "v2/customers") == {str(code): 1}
    assert seen["faults"] == {str(code): 5}
    assert seen["statuses"] == {str(code): 5, "404": 1, "401": 1}
    assert seen["total"] == 7


@pytest.mark.parametrize(
    ("text", "header"),
    [("429=1,retry-after=0.2", "0.2"), ("429=1", "1"), ("429=1,retry-after=30", "30")],
)
def test_429_fault_sends_retry_after(make_sandbox: MakeSandbox, text: str, header: str) -> None:
    server = make_sandbox(faults=FaultSpec.parse(text))
    response = search(server)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == header
    assert isinstance(response.json()["Message"], str)
    assert route_counts(server, SEARCH) == {"429": 1}
    assert stats(server)["faults"] == {"429": 1}


def test_malformed_fault_answers_200_with_a_body_that_is_not_json(
    make_sandbox: MakeSandbox,
) -> None:
    server = make_sandbox(faults=FaultSpec.parse("malformed=1"))
    for response in (
        search(server),
        signed_request(server, "GET", HEALTH),
        signed_request(server, "GET", "v2/customers"),
    ):
        assert response.status_code == 200
        with pytest.raises(ValueError, match=r"."):
            json.loads(response.text)
    assert route_counts(server, SEARCH) == {"200": 1}
    assert stats(server)["faults"] == {"malformed": 3}


def test_drop_fault_cuts_the_connection_mid_answer(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("drop=1"))
    with pytest.raises(httpx.RemoteProtocolError):
        search(server)
    with (
        sdk(server, RetryPolicy(attempts=1)) as sophtron,
        pytest.raises(SophtronConnectionError) as caught,
    ):
        sophtron.get_institution_by_name("Sophtron Bank NoMFA")
    assert caught.value.unsent is False
    assert route_counts(server, SEARCH) == {"200": 2}
    assert stats(server)["faults"] == {"drop": 2}


def test_slow_fault_delays_the_answer(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("slow=1,slow-seconds=0.5"))
    started = time.monotonic()
    response = search(server)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert [i["InstitutionID"] for i in response.json()] == [NOMFA]
    assert elapsed >= 0.5
    assert elapsed < 5
    assert route_counts(server, SEARCH) == {"200": 1}
    assert stats(server)["faults"] == {"slow": 1}


def test_no_faults_without_a_spec(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox()
    assert all(search(server).status_code == 200 for _ in range(20))
    assert stats(server)["faults"] == {}
    assert route_counts(server, SEARCH) == {"200": 20}


_MIXED = "429=0.2,500=0.2,502=0.1,503=0.1"


def _statuses(server: SandboxServer, count: int = 40) -> list[int]:
    requests = itertools.cycle(
        [
            ("GET", HEALTH, None),
            ("POST", SEARCH, {"InstitutionName": "bank"}),
            ("GET", "v2/customers", None),
        ]
    )
    return [
        signed_request(server, method, path, json=body).status_code
        for method, path, body in itertools.islice(requests, count)
    ]


def test_mixed_fault_rates_are_reproducible_from_the_seed(make_sandbox: MakeSandbox) -> None:
    first = make_sandbox(faults=FaultSpec.parse(_MIXED))
    second = make_sandbox(faults=FaultSpec.parse(_MIXED))
    other_seed = make_sandbox(faults=FaultSpec.parse(_MIXED), seed=SEED + 1)
    one, two, three = _statuses(first), _statuses(second), _statuses(other_seed)
    assert one == two
    assert set(one) == {200, 429, 500, 502, 503}
    assert 8 <= one.count(200) <= 32
    assert three != one
    assert stats(first)["faults"] == stats(second)["faults"]
    assert stats(first)["routes"] == stats(second)["routes"]
    assert sum(stats(first)["faults"].values()) == 40 - one.count(200)
    # The sequence follows the documented rule: one seeded draw per /api request.
    injector = FaultInjector(FaultSpec.parse(_MIXED), SEED)
    expected = [200 if (kind := injector.draw()) is None else int(kind) for _ in range(40)]
    assert one == expected


# --- the SDK against faults ----------------------------------------------------------------------


def test_idempotent_reads_are_retried_through_server_errors(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("500=0.5"))
    with sdk(server, RetryPolicy(attempts=10, backoff=0.001)) as sophtron:
        for _ in range(4):
            found = sophtron.get_institution_by_name("Sophtron Bank NoMFA")
            assert [i.institution_id for i in found] == [NOMFA]
    counts = route_counts(server, SEARCH)
    assert counts["200"] == 4
    assert counts["500"] >= 3
    assert stats(server)["faults"] == {"500": counts["500"]}


def test_reads_give_up_after_the_policy_attempts(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("503=1"))
    with (
        sdk(server, RetryPolicy(attempts=3, backoff=0.001)) as sophtron,
        pytest.raises(ServerError) as caught,
    ):
        sophtron.get_institution_by_name("Sophtron Bank NoMFA")
    assert caught.value.status_code == 503
    assert route_counts(server, SEARCH) == {"503": 3}


def test_create_is_not_retried_after_a_server_error(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("500=1"))
    with (
        sdk(server, RetryPolicy(attempts=5, backoff=0.001)) as sophtron,
        pytest.raises(ServerError) as caught,
    ):
        create(sophtron, "no-retry-500")
    assert caught.value.status_code == 500
    assert route_counts(server, CREATE) == {"500": 1}
    assert stats(server)["total"] == 1


def test_create_is_not_retried_after_a_dropped_answer(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("drop=1"))
    with (
        sdk(server, RetryPolicy(attempts=5, backoff=0.001)) as sophtron,
        pytest.raises(SophtronConnectionError),
    ):
        create(sophtron, "no-retry-drop")
    assert sum(route_counts(server, CREATE).values()) == 1
    assert stats(server)["total"] == 1
    # The request was handled before the connection was cut: resending could duplicate it.
    logins = admin(server, "GET", "truth")["Logins"]
    assert [login["UserName"] for login in logins] == ["no-retry-drop"]


def test_reads_are_retried_after_dropped_answers(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("drop=1"))
    with (
        sdk(server, RetryPolicy(attempts=3, backoff=0.001)) as sophtron,
        pytest.raises(SophtronConnectionError),
    ):
        sophtron.get_institution_by_name("Sophtron Bank NoMFA")
    assert sum(route_counts(server, SEARCH).values()) == 3


def test_429_is_retried_for_any_call_after_retry_after(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("429=1,retry-after=0.2"))
    delays: list[float] = []
    with (
        sdk(server, RetryPolicy(attempts=3, backoff=0.001), sleep=delays.append) as sophtron,
        pytest.raises(RateLimited) as caught,
    ):
        create(sophtron, "retry-429-create")
    assert caught.value.retry_after == pytest.approx(0.2)
    assert route_counts(server, CREATE) == {"429": 3}
    assert len(delays) == 2
    assert all(delay >= 0.2 for delay in delays), delays
    assert all(delay < 1 for delay in delays), delays


def _advance_to_429_run(server: SandboxServer, spec: FaultSpec, run: int) -> int:
    """Send throwaway requests until the next ``run`` draws are 429s; return the run's length."""
    injector = FaultInjector(spec, SEED)
    draws = [injector.draw() for _ in range(200)]
    start = next(i for i in range(len(draws) - run) if all(d == "429" for d in draws[i : i + run]))
    for _ in range(start):
        signed_request(server, "GET", HEALTH)
    length = 0
    while draws[start + length] == "429":
        length += 1
    return length


def test_429_retried_until_success_waiting_each_time(make_sandbox: MakeSandbox) -> None:
    spec = FaultSpec.parse("429=0.5,retry-after=0.2")
    server = make_sandbox(faults=spec)
    expected = _advance_to_429_run(server, spec, run=2)
    admin(server, "DELETE", "stats")
    delays: list[float] = []
    with sdk(server, RetryPolicy(attempts=20, backoff=0.001), sleep=delays.append) as sophtron:
        tracker = create(sophtron, "retry-429-success")
    assert tracker.user_institution_id
    assert route_counts(server, CREATE) == {"429": expected, "200": 1}
    assert len(delays) == expected
    assert all(delay >= 0.2 for delay in delays), delays


def test_429_retry_really_waits_retry_after(make_sandbox: MakeSandbox) -> None:
    spec = FaultSpec.parse("429=0.5,retry-after=0.2")
    server = make_sandbox(faults=spec)
    expected = _advance_to_429_run(server, spec, run=1)
    admin(server, "DELETE", "stats")
    started = time.monotonic()
    with sdk(server, RetryPolicy(attempts=20, backoff=0.001)) as sophtron:
        create(sophtron, "retry-429-timed")
    elapsed = time.monotonic() - started
    assert route_counts(server, CREATE) == {"429": expected, "200": 1}
    assert elapsed >= 0.2 * expected


def test_malformed_reads_are_retried_then_reported(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("malformed=1"))
    with (
        sdk(server, RetryPolicy(attempts=3, backoff=0.001)) as sophtron,
        pytest.raises(MalformedResponse),
    ):
        sophtron.get_institution_by_name("Sophtron Bank NoMFA")
    assert route_counts(server, SEARCH) == {"200": 3}
    assert stats(server)["faults"] == {"malformed": 3}


def test_malformed_reads_recover_when_a_good_answer_comes(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("malformed=0.5"))
    with sdk(server, RetryPolicy(attempts=10, backoff=0.001)) as sophtron:
        for _ in range(4):
            found = sophtron.get_institution_by_name("Sophtron Bank NoMFA")
            assert [i.institution_id for i in found] == [NOMFA]
    malformed = stats(server)["faults"]["malformed"]
    assert malformed >= 3
    assert route_counts(server, SEARCH) == {"200": 4 + malformed}


def test_malformed_create_is_not_retried(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(faults=FaultSpec.parse("malformed=1"))
    with (
        sdk(server, RetryPolicy(attempts=5, backoff=0.001)) as sophtron,
        pytest.raises(MalformedResponse),
    ):
        create(sophtron, "no-retry-malformed")
    assert route_counts(server, CREATE) == {"200": 1}


# --- rate limiting -------------------------------------------------------------------------------


def test_rate_limit_answers_429_from_the_sixth_request(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(rate_limit=RateLimit.parse("5/MIN"))
    assert admin(server, "GET", "")["rate_limit"] == "5/MIN"
    statuses = [search(server).status_code for _ in range(5)]
    assert statuses == [200] * 5
    sixth = signed_request(server, "GET", HEALTH)
    assert sixth.status_code == 429
    retry_after = float(sixth.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert isinstance(sixth.json()["Message"], str)
    assert search(server).status_code == 429

    other = {"user_id": OTHER_USER_ID, "access_key": OTHER_ACCESS_KEY}
    assert [search(server, **other).status_code for _ in range(5)] == [200] * 5
    assert search(server, **other).status_code == 429

    seen = stats(server)
    assert seen["faults"] == {"rate_limit": 3}
    assert route_counts(server, SEARCH) == {"200": 10, "429": 2}
    assert route_counts(server, HEALTH) == {"429": 1}
    assert seen["users"] == {USER_ID: 7, OTHER_USER_ID: 6}


def test_rate_limit_does_not_count_rejected_signatures(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(rate_limit=RateLimit.parse("2/MIN"))
    for _ in range(5):
        assert httpx.get(f"{server.url}/{HEALTH}", timeout=10).status_code == 401
    assert [search(server).status_code for _ in range(3)] == [200, 200, 429]


def test_sdk_raises_rate_limited_when_the_wait_is_too_long(make_sandbox: MakeSandbox) -> None:
    server = make_sandbox(rate_limit=RateLimit.parse("5/MIN"))
    delays: list[float] = []
    with sdk(server, RetryPolicy(attempts=3, max_retry_after=1), sleep=delays.append) as sophtron:
        for _ in range(5):
            assert sophtron.get_institution_by_name("Sophtron Bank NoMFA")
        with pytest.raises(RateLimited) as caught:
            sophtron.get_institution_by_name("Sophtron Bank NoMFA")
    assert caught.value.status_code == 429
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 1
    assert caught.value.retry_after <= 60
    assert delays == []
    assert route_counts(server, SEARCH) == {"200": 5, "429": 1}
    assert stats(server)["faults"] == {"rate_limit": 1}
