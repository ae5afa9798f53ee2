"""Every failure mode surfaces as the right exception, and no secret leaks into errors or logs."""

from __future__ import annotations

import base64
import http.client
import http.server
import logging
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from sophsync.sandbox import FaultSpec, SandboxServer
from sophsync.sophtron import (
    AnswerRejected,
    AsyncClient,
    Client,
    FailureReason,
    InvalidAccessKey,
    InvalidCredentials,
    JobFailed,
    JobState,
    JobTimeout,
    NotFound,
    RetryPolicy,
    SecurityQuestionsPrompt,
    SophtronConnectionError,
    SophtronError,
    SophtronTimeout,
    TokenInputPrompt,
    TokenMethodPrompt,
    _curl,
    job_status,
)
from tests.conftest import (
    ACCESS_KEY,
    FAST,
    OTHER_ACCESS_KEY,
    OTHER_USER_ID,
    USER_ID,
    no_retry,
)

BANK = "8d0d9991-5e35-4b82-afa4-e93695e5ca7d"
NO_MFA = "926623ca-5952-4921-8f77-2023f1cdde8e"
CAPTCHA = "8ad00f00-72b7-4642-a0de-b3f31e08510a"
QUESTION = "8809dee7-9e23-4039-a723-02bc01fce0f2"
QUESTIONS = "8f32ccc1-acaf-4e6b-93b8-1f2cd398647d"
TOKEN = "337fe0c2-476e-46f5-a360-bf33f9fe1937"
TOKEN_READ = "0fe7236b-079a-4fe6-aed9-cf194790a553"
UNKNOWN = "11111111-2222-3333-4444-555555555555"
NOTHING_LISTENING = "http://127.0.0.1:9/api"

PASSWORD = "hunter2-bank-password"
ANSWER = "mfa-answer-7731"
DECODED_KEY = base64.b64decode(ACCESS_KEY).decode()
SECRETS = (ACCESS_KEY, DECODED_KEY, PASSWORD, ANSWER)


def no_wait(_: float) -> None:
    return None


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def assert_clean(error: BaseException) -> None:
    assert_no_secret(str(error))
    assert_no_secret(repr(error))


def failed(run: Callable[[], Any]) -> JobFailed:
    with pytest.raises(JobFailed) as raised:
        run()
    assert_clean(raised.value)
    return raised.value


# --- jobs that fail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("institution", "username", "password"),
    [
        (NO_MFA, "fail-bad-password", PASSWORD),
        (NO_MFA, "fail-BAD-PASSWORD-upper", PASSWORD),
        (NO_MFA, "fail-password-wrong", "wrong"),
        (BANK, "fail-bad-password-mfa-bank", PASSWORD),
        (QUESTIONS, "fail-bad-password-questions", PASSWORD),
    ],
)
def test_bad_password(client: Client, institution: str, username: str, password: str) -> None:
    tracker = client.create_user_institution(institution, username, password)
    error = failed(lambda: client.wait_for_job(tracker.job_id))
    assert error.reason is FailureReason.BAD_CREDENTIALS
    assert isinstance(error, SophtronError)
    assert not error.retryable
    assert error.job is not None
    assert error.job.job_id == tracker.job_id
    assert error.job.last_step == "LogInPanel"
    assert error.job.success_flag is False
    assert job_status(error.job).state is JobState.FAILED
    assert "username or password" in str(error)
    # The login exists, but never shows accounts.
    assert tracker.login_id is not None
    assert client.get_user_institution_accounts(tracker.login_id) == []


@pytest.mark.anyio
async def test_bad_password_async(async_client: AsyncClient) -> None:
    tracker = await async_client.create_user_institution(
        NO_MFA, "fail-async-bad-password", PASSWORD
    )
    with pytest.raises(JobFailed) as raised:
        await async_client.wait_for_job(tracker.job_id)
    assert raised.value.reason is FailureReason.BAD_CREDENTIALS
    assert_clean(raised.value)


def test_bad_password_v2(client: Client) -> None:
    customer = client.create_customer("fail-v2-bad-password", "Fail")
    tracker = client.create_member(customer.customer_id, NO_MFA, "v2-bad-password", PASSWORD)
    error = failed(lambda: client.wait_for_job(tracker.job_id, v2=True))
    assert error.reason is FailureReason.BAD_CREDENTIALS


@pytest.mark.parametrize("institution", [NO_MFA, BANK])
def test_institution_error(client: Client, institution: str) -> None:
    tracker = client.create_user_institution(institution, "fail-institution-error", PASSWORD)
    error = failed(lambda: client.wait_for_job(tracker.job_id))
    assert error.reason is FailureReason.INSTITUTION_ERROR
    assert error.job is not None
    assert error.job.last_status == "Error"
    assert job_status(error.job).state is JobState.FAILED


def _answer_until(client: Client, job_id: str, kind: str, answer: Any) -> None:
    """Answer every prompt before the first ``kind`` prompt rightly; answer that one ``answer``."""
    for _ in range(10):
        status = client.wait_for_job(job_id)
        prompt = status.prompt
        assert prompt is not None, f"the job never asked for {kind}"
        if prompt.kind == kind:
            client.answer_prompt(job_id, prompt, answer)
            return
        if isinstance(prompt, SecurityQuestionsPrompt):
            client.answer_prompt(job_id, prompt, [ANSWER] * len(prompt.questions))
        elif isinstance(prompt, TokenMethodPrompt):
            client.answer_prompt(job_id, prompt, "0")
        else:
            client.answer_prompt(job_id, prompt, ANSWER)
    pytest.fail(f"no {kind} prompt")


@pytest.mark.parametrize(
    ("institution", "kind", "answer", "step"),
    [
        (QUESTION, "security_questions", "wrong", "SecurityQuestion"),
        (QUESTION, "security_questions", " WRONG ", "SecurityQuestion"),
        (QUESTIONS, "security_questions", [ANSWER, "wrong", ANSWER], "SecurityQuestion"),
        (TOKEN, "token_input", "wrong", "TokenInput"),
        (CAPTCHA, "captcha", "wrong", "CaptchaImage"),
        (BANK, "captcha", "wrong", "CaptchaImage"),
        (BANK, "security_questions", "wrong", "SecurityQuestion"),
        (BANK, "token_input", "Wrong", "TokenInput"),
    ],
)
def test_wrong_answer(client: Client, institution: str, kind: str, answer: Any, step: str) -> None:
    tracker = client.create_user_institution(institution, f"fail-wrong-{kind}", PASSWORD)
    _answer_until(client, tracker.job_id, kind, answer)
    error = failed(lambda: client.wait_for_job(tracker.job_id))
    assert error.reason is FailureReason.WRONG_ANSWER
    assert error.job is not None
    assert error.job.last_step == step
    assert job_status(error.job).state is JobState.FAILED
    assert "security check" in str(error)


def test_wrong_answer_v2(client: Client) -> None:
    customer = client.create_customer("fail-v2-wrong", "Wrong")
    tracker = client.create_member(customer.customer_id, CAPTCHA, "v2-wrong", PASSWORD)
    assert client.wait_for_job(tracker.job_id, v2=True).state is JobState.NEEDS_INPUT
    client.answer_challenge(tracker.job_id, "captcha", "wrong")
    error = failed(lambda: client.wait_for_job(tracker.job_id, v2=True))
    assert error.reason is FailureReason.WRONG_ANSWER


def test_never_finishes(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "fail-never-finishes", PASSWORD)
    started = time.monotonic()
    with pytest.raises(JobTimeout) as raised:
        client.wait_for_job(tracker.job_id, timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 5.0  # gave up near its 0.3 s deadline, not after the default
    error = raised.value
    assert_clean(error)
    assert error.retryable
    assert error.job is not None
    assert error.job.job_id == tracker.job_id
    status = job_status(error.job)
    assert status.state is JobState.RUNNING
    assert not status.done
    # Still running later on.
    assert job_status(client.get_job_information_by_id(tracker.job_id)).state is JobState.RUNNING


@pytest.mark.anyio
async def test_never_finishes_async(async_client: AsyncClient) -> None:
    tracker = await async_client.create_user_institution(
        NO_MFA, "fail-async-never-finishes", PASSWORD
    )
    with pytest.raises(JobTimeout) as raised:
        await async_client.wait_for_job(tracker.job_id, timeout=0.3)
    assert raised.value.job is not None
    assert job_status(raised.value.job).state is JobState.RUNNING


def test_unanswered_prompt_times_out(make_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = make_sandbox(mfa_timeout=1.5)  # room for a loaded machine
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
        tracker = client.create_user_institution(QUESTION, "fail-mfa-timeout", PASSWORD)
        status = client.wait_for_job(tracker.job_id)
        assert status.state is JobState.NEEDS_INPUT
        assert status.prompt is not None
        time.sleep(1.8)
        error = failed(lambda: client.wait_for_job(tracker.job_id))
        assert error.reason is FailureReason.MFA_TIMEOUT
        assert error.job is not None
        assert error.job.last_status == "Timeout"
        assert error.job.last_step == "SecurityQuestion"
        assert job_status(error.job).state is JobState.TIMED_OUT
        assert "expired" in str(error)
        # Too late: the job no longer takes the answer.
        with pytest.raises(AnswerRejected):
            client.answer_prompt(tracker.job_id, status.prompt, ANSWER)


def test_unanswered_token_prompt_times_out(make_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = make_sandbox(mfa_timeout=1.5)  # room for a loaded machine
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
        tracker = client.create_user_institution(TOKEN, "fail-token-timeout", PASSWORD)
        status = client.wait_for_job(tracker.job_id)
        assert isinstance(status.prompt, TokenMethodPrompt)
        client.answer_prompt(tracker.job_id, status.prompt, "0")
        status = client.wait_for_job(tracker.job_id)
        assert isinstance(status.prompt, TokenInputPrompt)
        time.sleep(1.8)
        error = failed(lambda: client.wait_for_job(tracker.job_id))
        assert error.reason is FailureReason.MFA_TIMEOUT
        assert error.job is not None
        assert job_status(error.job).state is JobState.TIMED_OUT


# --- MFA asked again on refresh ---------------------------------------------------------------


def _answer_all(client: Client, job_id: str) -> list[str]:
    kinds = []
    status = client.wait_for_job(job_id)
    while status.prompt is not None and len(kinds) < 10:
        kinds.append(status.prompt.kind)
        if isinstance(status.prompt, SecurityQuestionsPrompt):
            client.answer_prompt(job_id, status.prompt, [ANSWER] * len(status.prompt.questions))
        elif isinstance(status.prompt, TokenMethodPrompt):
            client.answer_prompt(job_id, status.prompt, "0")
        else:
            client.answer_prompt(job_id, status.prompt, ANSWER)
        status = client.wait_for_job(job_id)
    assert status.state is JobState.SUCCEEDED
    return kinds


def test_mfa_again_at_a_bank_without_mfa(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "fail-nomfa+mfa-again", PASSWORD)
    login_id = tracker.login_id
    assert login_id is not None
    first = client.wait_for_job(tracker.job_id)
    assert first.state is JobState.SUCCEEDED
    assert first.prompt is None

    for _ in range(2):
        refresh = client.refresh_user_institution(login_id)
        status = client.wait_for_job(refresh.job_id)
        assert status.state is JobState.NEEDS_INPUT
        assert isinstance(status.prompt, SecurityQuestionsPrompt)
        assert len(status.prompt.questions) == 1
        client.answer_prompt(refresh.job_id, status.prompt, ANSWER)
        assert client.wait_for_job(refresh.job_id).state is JobState.SUCCEEDED

    account_id = client.get_user_institution_accounts(login_id)[0].account_id
    refresh = client.refresh_user_institution_account(account_id)
    assert _answer_all(client, refresh.job_id) == ["security_questions"]


def test_mfa_again_at_a_security_question_bank(client: Client) -> None:
    tracker = client.create_user_institution(QUESTION, "fail-question+mfa-again", PASSWORD)
    assert tracker.login_id is not None
    assert _answer_all(client, tracker.job_id) == ["security_questions"]
    refresh = client.refresh_user_institution(tracker.login_id)
    assert _answer_all(client, refresh.job_id) == ["security_questions"]


def test_refresh_without_mfa_again_asks_nothing(client: Client) -> None:
    for institution in (NO_MFA, QUESTION, BANK):
        tracker = client.create_user_institution(institution, "fail-plain-refresh", PASSWORD)
        assert tracker.login_id is not None
        _answer_all(client, tracker.job_id)
        refresh = client.refresh_user_institution(tracker.login_id)
        status = client.wait_for_job(refresh.job_id)
        assert status.state is JobState.SUCCEEDED
        assert status.prompt is None


def test_mfa_again_refresh_fails_on_a_wrong_answer(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "fail-wrong-again+mfa-again", PASSWORD)
    assert tracker.login_id is not None
    client.wait_for_job(tracker.job_id)
    refresh = client.refresh_user_institution(tracker.login_id)
    status = client.wait_for_job(refresh.job_id)
    assert status.prompt is not None
    client.answer_prompt(refresh.job_id, status.prompt, "wrong")
    assert failed(lambda: client.wait_for_job(refresh.job_id)).reason is (
        FailureReason.WRONG_ANSWER
    )


# --- answers the job does not take ------------------------------------------------------------


def test_answer_for_a_prompt_the_job_is_not_waiting_for(client: Client) -> None:
    tracker = client.create_user_institution(QUESTION, "fail-not-waiting", PASSWORD)
    job_id = tracker.job_id
    status = client.wait_for_job(job_id)
    assert isinstance(status.prompt, SecurityQuestionsPrompt)

    attempts: list[Callable[[], None]] = [
        lambda: client.update_job_captcha(job_id, ANSWER),
        lambda: client.update_job_token_input(job_id, token_input=ANSWER),
        lambda: client.update_job_token_input(job_id, token_choice="Voice call to ***-***-3800"),
        lambda: client.update_job_token_input(job_id, verify_phone_flag=True),
    ]
    for attempt in attempts:
        with pytest.raises(AnswerRejected) as raised:
            attempt()
        assert raised.value.job_id == job_id
        assert not raised.value.retryable
        assert_clean(raised.value)

    # The job still waits for its question; once answered, answering again is rejected.
    assert client.wait_for_job(job_id).prompt == status.prompt
    client.answer_prompt(job_id, status.prompt, ANSWER)
    assert client.wait_for_job(job_id).state is JobState.SUCCEEDED
    with pytest.raises(AnswerRejected) as raised:
        client.answer_prompt(job_id, status.prompt, ANSWER)
    assert_clean(raised.value)


def test_answer_for_a_finished_job(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "fail-finished", PASSWORD)
    assert client.wait_for_job(tracker.job_id).state is JobState.SUCCEEDED
    with pytest.raises(AnswerRejected):
        client.update_job_security_answer(tracker.job_id, [ANSWER])
    with pytest.raises(AnswerRejected):
        client.update_job_captcha(tracker.job_id, ANSWER)


@pytest.mark.anyio
async def test_answer_rejected_async(async_client: AsyncClient) -> None:
    tracker = await async_client.create_user_institution(
        TOKEN_READ, "fail-async-rejected", PASSWORD
    )
    status = await async_client.wait_for_job(tracker.job_id)
    assert status.prompt is not None
    assert status.prompt.kind == "phone_confirmation"
    with pytest.raises(AnswerRejected):
        await async_client.update_job_security_answer(tracker.job_id, [ANSWER])
    await async_client.answer_prompt(tracker.job_id, status.prompt, True)
    assert (await async_client.wait_for_job(tracker.job_id)).state is JobState.SUCCEEDED


def test_token_method_that_is_not_offered(client: Client) -> None:
    tracker = client.create_user_institution(TOKEN, "fail-token-method", PASSWORD)
    status = client.wait_for_job(tracker.job_id)
    prompt = status.prompt
    assert isinstance(prompt, TokenMethodPrompt)

    for choice in ("Carrier pigeon", "7", str(len(prompt.options))):
        with pytest.raises(ValueError, match="not one of the offered methods"):
            client.answer_prompt(tracker.job_id, prompt, choice)
    with pytest.raises(AnswerRejected) as raised:
        client.update_job_token_input(tracker.job_id, token_choice="Carrier pigeon")
    assert raised.value.job_id == tracker.job_id

    # Nothing was taken: the job still asks for the method, and a real option works.
    again = client.wait_for_job(tracker.job_id)
    assert again.prompt == prompt
    client.answer_prompt(tracker.job_id, prompt, prompt.options[2])
    assert isinstance(client.wait_for_job(tracker.job_id).prompt, TokenInputPrompt)


def test_rejected_token_method_choice_is_not_echoed(client: Client) -> None:
    tracker = client.create_user_institution(TOKEN, "fail-token-echo", PASSWORD)
    prompt = client.wait_for_job(tracker.job_id).prompt
    assert isinstance(prompt, TokenMethodPrompt)
    # A one-time code typed into the method prompt by mistake must not end up in the message.
    with pytest.raises(ValueError, match="not one of the offered methods") as raised:
        client.answer_prompt(tracker.job_id, prompt, ANSWER)
    assert_clean(raised.value)


def test_answer_prompt_checks_the_answer_shape(client: Client) -> None:
    tracker = client.create_user_institution(QUESTIONS, "fail-answer-shape", PASSWORD)
    prompt = client.wait_for_job(tracker.job_id).prompt
    assert isinstance(prompt, SecurityQuestionsPrompt)
    with pytest.raises(ValueError, match="3 answer"):
        client.answer_prompt(tracker.job_id, prompt, [ANSWER, ANSWER])
    with pytest.raises(ValueError, match="3 answer"):
        client.answer_prompt(tracker.job_id, prompt, ANSWER)
    with pytest.raises(ValueError, match="exactly one"):
        client.update_job_token_input(tracker.job_id)
    with pytest.raises(ValueError, match="exactly one"):
        client.update_job_token_input(tracker.job_id, token_input="1", token_choice="x")


# --- credentials, ids, network ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "access_key"),
    [
        (USER_ID, OTHER_ACCESS_KEY),
        ("00000000-1111-2222-3333-444444444444", ACCESS_KEY),
        (OTHER_USER_ID, ACCESS_KEY),
    ],
    ids=["wrong-key", "unknown-user", "other-users-id"],
)
def test_invalid_credentials(sandbox: SandboxServer, user_id: str, access_key: str) -> None:
    with Client(user_id, access_key, base_url=sandbox.url, **FAST) as client:
        calls: list[Callable[[], Any]] = [
            client.health_check_auth,
            lambda: client.get_institution_by_name("sophtron bank"),
            lambda: client.create_user_institution(NO_MFA, "fail-creds", PASSWORD),
            client.list_customers,
        ]
        for send in calls:
            with pytest.raises(InvalidCredentials) as raised:
                send()
            assert raised.value.status_code == 401
            assert not raised.value.retryable
            assert "Access Key" in str(raised.value)
            assert_clean(raised.value)


@pytest.mark.anyio
async def test_invalid_credentials_async(sandbox: SandboxServer) -> None:
    async with AsyncClient(USER_ID, OTHER_ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
        with pytest.raises(InvalidCredentials) as raised:
            await client.health_check_auth()
    assert raised.value.status_code == 401
    assert raised.value.route == "GET Institution/HealthCheckAuth"


NOT_FOUND_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("get_job_information_by_id", (UNKNOWN,), {}),
    ("get_job", (UNKNOWN,), {}),
    ("update_job_security_answer", (UNKNOWN, [ANSWER]), {}),
    ("update_job_token_input", (UNKNOWN,), {"token_input": ANSWER}),
    ("update_job_captcha", (UNKNOWN, ANSWER), {}),
    ("answer_challenge", (UNKNOWN, "captcha", ANSWER), {}),
    ("wait_for_job", (UNKNOWN,), {}),
    ("get_user_institution_by_id", (UNKNOWN,), {}),
    ("get_user_institution_accounts", (UNKNOWN,), {}),
    ("refresh_user_institution", (UNKNOWN,), {}),
    ("retry_adding_user_institution", (UNKNOWN,), {}),
    ("update_user_institution", (UNKNOWN, "fail-user", PASSWORD), {}),
    ("delete_user_institution", (UNKNOWN,), {}),
    ("get_user_institution_account_by_id", (UNKNOWN,), {}),
    ("refresh_user_institution_account", (UNKNOWN,), {}),
    ("get_transactions_by_transaction_date", (UNKNOWN, "2026-01-01", "2026-02-01"), {}),
    ("get_institution_by_id", (UNKNOWN,), {}),
    ("get_customer", (UNKNOWN,), {}),
    ("delete_customer", (UNKNOWN,), {}),
    ("list_members", (UNKNOWN,), {}),
    ("list_customer_accounts", (UNKNOWN,), {}),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs"), NOT_FOUND_CALLS, ids=[name for name, _, _ in NOT_FOUND_CALLS]
)
def test_unknown_ids(
    client: Client, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(NotFound) as raised:
        getattr(client, method)(*args, **kwargs)
    assert raised.value.status_code == 404
    assert not raised.value.retryable
    assert_clean(raised.value)
    # Ids are masked in the route shown to people.
    assert UNKNOWN not in str(raised.value)
    assert UNKNOWN not in raised.value.route


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "route"),
    [
        ("get_job_information_by_id", (UNKNOWN,), {}, "POST Job/GetJobInformationByID"),
        ("update_job_security_answer", (UNKNOWN, [ANSWER]), {}, "POST Job/UpdateJobSecurityAnswer"),
        (
            "update_job_token_input",
            (UNKNOWN,),
            {"token_input": ANSWER},
            "POST Job/UpdateJobTokenInput",
        ),
        ("update_job_captcha", (UNKNOWN, ANSWER), {}, "POST Job/UpdateJobCaptchaInput"),
        ("get_job", (UNKNOWN,), {}, "GET v2/job/{id}"),
        ("get_customer", (UNKNOWN,), {}, "GET v2/customers/{id}"),
        (
            "get_user_institution_by_id",
            (UNKNOWN,),
            {},
            "POST UserInstitution/GetUserInstitutionByID",
        ),
    ],
    ids=[
        "v1-job",
        "v1-security-answer",
        "v1-token-input",
        "v1-captcha",
        "v2-job",
        "v2-customer",
        "v1-login",
    ],
)
def test_errors_name_the_route(
    client: Client, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], route: str
) -> None:
    """Routes in errors mask ids, and only ids: each v1 Job call keeps its own name."""
    with pytest.raises(NotFound) as raised:
        getattr(client, method)(*args, **kwargs)
    assert raised.value.route == route
    assert route in str(raised.value)


def test_answer_rejected_names_the_route(client: Client) -> None:
    tracker = client.create_user_institution(NO_MFA, "fail-rejected-route", PASSWORD)
    client.wait_for_job(tracker.job_id)
    with pytest.raises(AnswerRejected) as raised:
        client.update_job_security_answer(tracker.job_id, [ANSWER])
    assert raised.value.route == "POST Job/UpdateJobSecurityAnswer"
    with pytest.raises(AnswerRejected) as raised:
        client.update_job_captcha(tracker.job_id, ANSWER)
    assert raised.value.route == "POST Job/UpdateJobCaptcha"


def test_other_users_ids_are_not_found(client: Client, sandbox: SandboxServer) -> None:
    tracker = client.create_user_institution(NO_MFA, "fail-isolated", PASSWORD)
    assert tracker.login_id is not None
    client.wait_for_job(tracker.job_id)
    account_id = client.get_user_institution_accounts(tracker.login_id)[0].account_id
    with Client(OTHER_USER_ID, OTHER_ACCESS_KEY, base_url=sandbox.url, **FAST) as other:
        with pytest.raises(NotFound):
            other.get_user_institution_by_id(tracker.login_id)
        with pytest.raises(NotFound):
            other.get_job_information_by_id(tracker.job_id)
        with pytest.raises(NotFound):
            other.get_user_institution_account_by_id(account_id)
        with pytest.raises(NotFound):
            other.delete_user_institution(tracker.login_id)
    assert client.get_user_institution_by_id(tracker.login_id).user_name == "fail-isolated"


@pytest.mark.parametrize(
    "send",
    [
        lambda client: client.health_check_auth(),
        lambda client: client.create_user_institution(NO_MFA, "fail-nobody", PASSWORD),
        lambda client: client.update_job_security_answer(UNKNOWN, [ANSWER]),
    ],
    ids=["read", "create", "answer"],
)
def test_nothing_listening(send: Callable[[Client], Any]) -> None:
    with (
        Client(USER_ID, ACCESS_KEY, base_url=NOTHING_LISTENING, sleep=no_wait, **FAST) as client,
        pytest.raises(SophtronConnectionError) as raised,
    ):
        send(client)
    error = raised.value
    assert error.unsent is True
    assert error.retryable
    assert "could not connect" in str(error)
    assert_clean(error)


def test_the_proxy_the_environment_names(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blocking client sends through the proxy that HTTP_PROXY (HTTPS_PROXY, ALL_PROXY)
    names, as httpx and requests do, except to the hosts NO_PROXY names."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", NOTHING_LISTENING.removesuffix("/api"))
    _curl.proxy_for.cache_clear()
    try:
        with (
            Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, sleep=no_wait, **FAST) as client,
            pytest.raises(SophtronConnectionError) as raised,
        ):
            client.health_check_auth()  # the proxy is not there
        assert raised.value.unsent is True
        assert "could not connect" in str(raised.value)
        assert_clean(raised.value)

        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        _curl.proxy_for.cache_clear()
        with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
            assert client.health_check_auth() == "this is online."
    finally:
        _curl.proxy_for.cache_clear()


class _ForwardingProxy(http.server.BaseHTTPRequestHandler):
    """An HTTP proxy that forwards each request to the host its absolute URL names, keeping the
    request lines it was sent in ``seen``."""

    seen: ClassVar[list[str]] = []

    def _forward(self) -> None:
        self.seen.append(self.requestline)
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(target.netloc, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        upstream.request(self.command, self.path[len(f"http://{target.netloc}") :], body, headers)
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_a_request_through_the_proxy_reaches_sophtron(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a proxy the client sends the whole URL, signed as it is sent; the sandbox checks
    the signature against the path it receives, so a wrong URL is refused."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardingProxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    _ForwardingProxy.seen.clear()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    _curl.proxy_for.cache_clear()
    try:
        with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url, **FAST) as client:
            assert client.health_check_auth() == "this is online."
            found = client.get_institution_by_name("Sophtron Bank")
        assert found
        assert _ForwardingProxy.seen == [
            f"GET {sandbox.url}/Institution/HealthCheckAuth HTTP/1.1",
            f"POST {sandbox.url}/Institution/GetInstitutionByName HTTP/1.1",
        ]
    finally:
        proxy.shutdown()
        proxy.server_close()
        _curl.proxy_for.cache_clear()


class _HangsUpOnPosts(socketserver.BaseRequestHandler):
    """A server that answers every GET on a kept-alive connection and hangs up on every POST
    without a word, after reading it whole; it counts the POSTs it read."""

    posts: ClassVar[list[str]] = []

    def handle(self) -> None:
        reader = self.request.makefile("rb")
        while request_line := reader.readline():
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            reader.read(length)
            if request_line.startswith(b"POST"):
                self.posts.append(request_line.decode("latin-1").strip())
                return  # the connection closes: no answer at all
            body = b'"this is online."'
            self.request.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )


def test_a_request_that_changes_state_is_never_sent_twice_unseen() -> None:
    """A server that hangs up without an answer may have acted on the request. A call that
    changes state is then reported (not sent again, not by the client and not by its HTTP
    library, which sends a request again by itself when a kept-alive connection closes before
    any answer): it goes on a connection of its own."""
    _HangsUpOnPosts.posts.clear()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _HangsUpOnPosts)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        with Client(USER_ID, ACCESS_KEY, base_url=url, sleep=no_wait, **FAST) as client:
            assert client.health_check_auth() == "this is online."  # a kept-alive connection
            with pytest.raises(SophtronConnectionError) as raised:
                client.create_user_institution(NO_MFA, "hung-up-on", PASSWORD)
        assert raised.value.unsent is False
        assert _HangsUpOnPosts.posts == ["POST /api/UserInstitution/CreateUserInstitution HTTP/1.1"]
        assert_clean(raised.value)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
async def test_nothing_listening_async() -> None:
    async def no_sleep(_: float) -> None:
        return None

    async with AsyncClient(
        USER_ID, ACCESS_KEY, base_url=NOTHING_LISTENING, sleep=no_sleep, **FAST
    ) as client:
        with pytest.raises(SophtronConnectionError) as raised:
            await client.create_user_institution(NO_MFA, "fail-nobody-async", PASSWORD)
    assert raised.value.unsent is True
    assert_clean(raised.value)


def test_read_timeout(make_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = make_sandbox(faults=FaultSpec.parse("slow=1,slow-seconds=2"))
    with Client(
        USER_ID, ACCESS_KEY, base_url=sandbox.url, timeout=0.2, retry=no_retry(), **FAST
    ) as client:
        started = time.monotonic()
        with pytest.raises(SophtronTimeout) as raised:
            client.get_institution_by_name("sophtron bank")
        assert time.monotonic() - started < 1.9  # before the slow answer (2 s) arrived
    error = raised.value
    assert error.retryable
    assert error.route == "POST Institution/GetInstitutionByName"
    assert "in time" in str(error)
    assert_clean(error)


@pytest.mark.parametrize(
    "access_key",
    ["", "   ", "hunter2-not-base64!", "c2FuZGJveA=", "====", "sandbox key with spaces?"],
)
def test_bad_access_key(access_key: str) -> None:
    for kind in (Client, AsyncClient):
        with pytest.raises(InvalidAccessKey) as raised:
            kind(USER_ID, access_key)
        assert isinstance(raised.value, ValueError)
        assert "Access Key" in str(raised.value)
        if access_key.strip():
            assert access_key.strip() not in str(raised.value)


def test_empty_user_id() -> None:
    with pytest.raises(ValueError, match="User ID"):
        Client("  ", ACCESS_KEY)


# --- secrets stay secret ----------------------------------------------------------------------


def test_repr_hides_the_access_key(sandbox: SandboxServer) -> None:
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url) as client:
        shown = repr(client)
        assert USER_ID in shown
        assert sandbox.url in shown
        assert_no_secret(shown)
        assert_no_secret(str(client))


@pytest.mark.anyio
async def test_async_repr_hides_the_access_key(async_client: AsyncClient) -> None:
    shown = repr(async_client)
    assert shown.startswith("AsyncClient(")
    assert USER_ID in shown
    assert_no_secret(shown)
    assert_no_secret(str(async_client))


def _flow(client: Client) -> list[BaseException]:
    """A whole v1 and v2 flow with distinctive secrets, plus the errors along the way."""
    errors: list[BaseException] = []
    tracker = client.create_user_institution(BANK, "leak-check", PASSWORD)
    assert tracker.login_id is not None
    assert _answer_all(client, tracker.job_id) == [
        "captcha",
        "security_questions",
        "token_method",
        "token_input",
    ]
    job = client.get_job_information_by_id(tracker.job_id)
    assert job.token_input == ANSWER  # the sandbox echoes answers: they are on the wire
    for account in client.get_user_institution_accounts(tracker.login_id):
        client.get_transactions_by_transaction_date(account.account_id, "2026-10-01", "2026-11-21")

    customer = client.create_customer("leak-check", "Leak")
    member = client.create_member(customer.customer_id, QUESTION, "leak-check-v2", PASSWORD)
    assert client.wait_for_job(member.job_id, v2=True).state is JobState.NEEDS_INPUT
    client.answer_challenge(member.job_id, "security_questions", f'["{ANSWER}"]')
    assert client.wait_for_job(member.job_id, v2=True).state is JobState.SUCCEEDED

    for run in (
        lambda: client.wait_for_job(
            client.create_user_institution(NO_MFA, "leak-bad-password", PASSWORD).job_id
        ),
        lambda: client.update_job_security_answer(tracker.job_id, [ANSWER]),
        lambda: client.answer_challenge(member.job_id, "token_input", ANSWER),
        lambda: client.get_user_institution_by_id(UNKNOWN),
        lambda: client.update_user_institution(UNKNOWN, "leak-check", PASSWORD),
        lambda: client.wait_for_job(
            client.create_user_institution(NO_MFA, "leak-never-finishes", PASSWORD).job_id,
            timeout=0.1,
        ),
    ):
        with pytest.raises(SophtronError) as raised:
            run()
        errors.append(raised.value)

    wrong = client.create_user_institution(CAPTCHA, "leak-wrong", PASSWORD)
    status = client.wait_for_job(wrong.job_id)
    assert status.prompt is not None
    client.answer_prompt(wrong.job_id, status.prompt, "wrong")
    with pytest.raises(JobFailed) as failure:
        client.wait_for_job(wrong.job_id)
    errors.append(failure.value)
    return errors


def test_errors_never_contain_secrets(
    client: Client, make_sandbox: Callable[..., SandboxServer]
) -> None:
    errors = _flow(client)
    assert len(errors) == 7
    with Client(USER_ID, OTHER_ACCESS_KEY, base_url=client.base_url, **FAST) as wrong_key:
        with pytest.raises(InvalidCredentials) as raised:
            wrong_key.create_user_institution(NO_MFA, "leak-creds", PASSWORD)
        errors.append(raised.value)
    with Client(USER_ID, ACCESS_KEY, base_url=NOTHING_LISTENING, sleep=no_wait) as nobody:
        with pytest.raises(SophtronConnectionError) as connection:
            nobody.create_user_institution(NO_MFA, "leak-nobody", PASSWORD)
        errors.append(connection.value)
    slow = make_sandbox(faults=FaultSpec.parse("slow=1,slow-seconds=2"))
    with Client(
        USER_ID, ACCESS_KEY, base_url=slow.url, timeout=0.2, retry=RetryPolicy(attempts=1)
    ) as timing_out:
        with pytest.raises(SophtronTimeout) as timeout:
            timing_out.update_job_token_input(UNKNOWN, token_input=ANSWER)
        errors.append(timeout.value)
    with pytest.raises(InvalidAccessKey) as bad_key:
        Client(USER_ID, f"{ACCESS_KEY}!")
    errors.append(bad_key.value)
    for error in errors:
        assert_clean(error)


def test_logs_never_contain_secrets(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors = _flow(client)
    assert errors
    text = caplog.text
    # The flow was logged (the SDK's own lines, at debug and warning level) ...
    assert "Sophtron POST UserInstitution/CreateUserInstitution -> 200" in text
    assert "-> 404" in text
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    # ... and none of it shows a secret.
    assert_no_secret(text)
    for record in caplog.records:
        assert_no_secret(record.getMessage())
