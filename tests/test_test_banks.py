"""Sophtron's seven test banks, connected end to end through v1 and v2 with both clients."""

from __future__ import annotations

import datetime as dt
import inspect
import io
import json
from typing import Any

import pytest
from PIL import Image

from sophsync.sophtron import (
    AccountKind,
    AsyncClient,
    CaptchaPrompt,
    Client,
    Institution,
    JobState,
    JobStatus,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
)
from tests.conftest import TODAY, USER_ID

#: name -> (InstitutionID, the prompt kinds its login asks, in order).
TEST_BANKS: dict[str, tuple[str, list[str]]] = {
    "Sophtron Bank": (
        "8d0d9991-5e35-4b82-afa4-e93695e5ca7d",
        ["captcha", "security_questions", "token_method", "token_input"],
    ),
    "Sophtron Bank NoMFA": ("926623ca-5952-4921-8f77-2023f1cdde8e", []),
    "Sophtron Bank Captcha": ("8ad00f00-72b7-4642-a0de-b3f31e08510a", ["captcha"]),
    "Sophtron Bank SecurityQuestion": (
        "8809dee7-9e23-4039-a723-02bc01fce0f2",
        ["security_questions"],
    ),
    "Sophtron Bank SecurityQuestion Multiple": (
        "8f32ccc1-acaf-4e6b-93b8-1f2cd398647d",
        ["security_questions"],
    ),
    "Sophtron Bank Token": (
        "337fe0c2-476e-46f5-a360-bf33f9fe1937",
        ["token_method", "token_input"],
    ),
    "Sophtron Bank TokenRead": ("0fe7236b-079a-4fe6-aed9-cf194790a553", ["phone_confirmation"]),
}
RECENT = (TODAY - dt.timedelta(days=90), TODAY)


async def call(sophtron: Client | AsyncClient, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method by name and await it when the client is asynchronous."""
    result = getattr(sophtron, name)(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


@pytest.fixture(params=["sync", "async"])
def sophtron(request: pytest.FixtureRequest, client: Client, async_client: AsyncClient) -> Any:
    return client if request.param == "sync" else async_client


def check_prompt(bank: str, prompt: Prompt) -> None:
    """What each kind of prompt must look like at the test banks."""
    if isinstance(prompt, CaptchaPrompt):
        png = prompt.image_png
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            width, height = image.size
            image.load()
        assert width > height > 10
    elif isinstance(prompt, SecurityQuestionsPrompt):
        expected = 3 if bank == "Sophtron Bank SecurityQuestion Multiple" else 1
        assert len(prompt.questions) == expected
        assert prompt.questions[0] == "What is your favorite color?"
        assert all(question.endswith("?") for question in prompt.questions)
        assert not any("&#" in question for question in prompt.questions)
        if expected == 3:
            assert "What is your mother's middle name?" in prompt.questions
    elif isinstance(prompt, TokenMethodPrompt):
        assert len(prompt.options) >= 2
        assert len(prompt.labels) == len(prompt.options)
        assert all(label == " ".join(label.split()) for label in prompt.labels)
        assert not any(label.startswith(":") for label in prompt.labels)
    elif isinstance(prompt, TokenInputPrompt):
        assert prompt.label == "Token"
    else:
        assert isinstance(prompt, PhoneConfirmationPrompt)
        assert prompt.code.isdigit()
        assert len(prompt.code) == 6


def v1_answer(prompt: Prompt) -> Any:
    """An answer for ``answer_prompt``: a token method is chosen by its display label."""
    if isinstance(prompt, CaptchaPrompt):
        return "QW3RT"
    if isinstance(prompt, SecurityQuestionsPrompt):
        answers = [f"answer {n}" for n in range(len(prompt.questions))]
        return answers[0] if len(answers) == 1 else answers
    if isinstance(prompt, TokenMethodPrompt):
        return prompt.labels[1]
    if isinstance(prompt, TokenInputPrompt):
        return "135790"
    return True


def v2_answer(prompt: Prompt) -> str | bool:
    """``AnswerText`` for ``answer_challenge``."""
    if isinstance(prompt, SecurityQuestionsPrompt):
        return json.dumps([f"answer {n}" for n in range(len(prompt.questions))])
    if isinstance(prompt, TokenMethodPrompt):
        return prompt.options[0]
    answer = v1_answer(prompt)
    assert isinstance(answer, str | bool)
    return answer


async def check_accounts_and_transactions(
    sophtron: Client | AsyncClient, login_id: str, accounts: list[Any]
) -> None:
    assert len(accounts) == 6
    assert {account.kind for account in accounts} == set(AccountKind)
    assert all(account.user_institution_id == login_id for account in accounts)
    start, end = RECENT
    for account in accounts:
        transactions = await call(
            sophtron, "get_transactions_by_transaction_date", account.account_id, start, end
        )
        assert transactions, f"{account.account_name} has no transactions in 90 days"
        for txn in transactions:
            assert txn.account_id == account.account_id
            assert txn.user_id == USER_ID
            assert txn.booked_on is not None
            assert start <= txn.booked_on <= end
            assert txn.provider_id


@pytest.mark.anyio
@pytest.mark.parametrize("bank", list(TEST_BANKS))
async def test_connect_test_bank_v1(sophtron: Any, bank: str) -> None:
    institution_id, script = TEST_BANKS[bank]
    mode = "async" if isinstance(sophtron, AsyncClient) else "sync"

    found: list[Institution] = await call(sophtron, "get_institution_by_name", bank)
    assert found[0].institution_name == bank
    assert found[0].institution_id == institution_id

    tracker = await call(
        sophtron, "create_user_institution", institution_id, f"banks-v1-{mode}-{bank}", "asdfg12X"
    )
    login_id = tracker.login_id
    assert login_id is not None

    kinds: list[str] = []
    status: JobStatus = await call(sophtron, "wait_for_job", tracker.job_id)
    while status.state is JobState.NEEDS_INPUT and len(kinds) < 10:
        prompt = status.prompt
        assert prompt is not None
        kinds.append(prompt.kind)
        check_prompt(bank, prompt)
        assert not status.done
        assert status.message == "The bank is asking for more information."
        answer = v1_answer(prompt)
        assert await call(sophtron, "answer_prompt", tracker.job_id, prompt, answer) is None
        if isinstance(prompt, TokenMethodPrompt):
            job = await call(sophtron, "get_job_information_by_id", tracker.job_id)
            # The label chosen is sent back as the verbatim option.
            assert job.token_choice == prompt.options[1]
            assert job.token_choice != prompt.labels[1]
        status = await call(sophtron, "wait_for_job", tracker.job_id)

    assert kinds == script
    assert status.state is JobState.SUCCEEDED
    assert status.prompt is None
    assert status.job.success_flag is True

    accounts = await call(sophtron, "get_user_institution_accounts", login_id)
    await check_accounts_and_transactions(sophtron, login_id, accounts)


@pytest.mark.anyio
@pytest.mark.parametrize("bank", list(TEST_BANKS))
async def test_connect_test_bank_v2(sophtron: Any, bank: str) -> None:
    institution_id, script = TEST_BANKS[bank]
    mode = "async" if isinstance(sophtron, AsyncClient) else "sync"

    customer = await call(sophtron, "create_customer", f"banks-v2-{mode}-{bank}", bank)
    tracker = await call(
        sophtron,
        "create_member",
        customer.customer_id,
        institution_id,
        f"banks-v2-{mode}-{bank}",
        "asdfg12X",
        ["aggregate"],
    )
    member_id = tracker.member_id
    assert member_id is not None

    kinds: list[str] = []
    status: JobStatus = await call(sophtron, "wait_for_job", tracker.job_id, v2=True)
    while status.state is JobState.NEEDS_INPUT and len(kinds) < 10:
        prompt = status.prompt
        assert prompt is not None
        kinds.append(prompt.kind)
        check_prompt(bank, prompt)
        await call(sophtron, "answer_challenge", tracker.job_id, prompt.kind, v2_answer(prompt))
        status = await call(sophtron, "wait_for_job", tracker.job_id, v2=True)

    assert kinds == script
    assert status.state is JobState.SUCCEEDED
    member = await call(sophtron, "get_member", customer.customer_id, member_id)
    assert member.status == "Connected"
    assert member.institution_id == institution_id

    accounts = await call(sophtron, "list_member_accounts", customer.customer_id, member_id)
    await check_accounts_and_transactions(sophtron, member_id, accounts)
    start, end = RECENT
    for account in accounts:
        transactions = await call(
            sophtron,
            "get_customer_transactions",
            customer.customer_id,
            account.account_id,
            start,
            end,
        )
        assert transactions
        assert all(start <= txn.booked_on <= end for txn in transactions)
