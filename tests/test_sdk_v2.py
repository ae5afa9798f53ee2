"""The v2 customer API with ``Client`` and ``AsyncClient`` against the sandbox."""

from __future__ import annotations

import datetime as dt
import inspect
import json
from decimal import Decimal
from typing import Any

import pytest

from sophsync.sandbox import SandboxServer
from sophsync.sophtron import (
    Account,
    AsyncClient,
    BadRequest,
    CaptchaPrompt,
    Client,
    Customer,
    Job,
    JobFailed,
    JobState,
    JobStatus,
    JobTracker,
    Member,
    NotFound,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
    Transaction,
    job_status,
)
from tests.conftest import FAST, OTHER_ACCESS_KEY, OTHER_USER_ID, TODAY

BANKS = {
    "Sophtron Bank": "8d0d9991-5e35-4b82-afa4-e93695e5ca7d",
    "Sophtron Bank NoMFA": "926623ca-5952-4921-8f77-2023f1cdde8e",
    "Sophtron Bank Captcha": "8ad00f00-72b7-4642-a0de-b3f31e08510a",
    "Sophtron Bank SecurityQuestion": "8809dee7-9e23-4039-a723-02bc01fce0f2",
    "Sophtron Bank SecurityQuestion Multiple": "8f32ccc1-acaf-4e6b-93b8-1f2cd398647d",
    "Sophtron Bank Token": "337fe0c2-476e-46f5-a360-bf33f9fe1937",
    "Sophtron Bank TokenRead": "0fe7236b-079a-4fe6-aed9-cf194790a553",
}
NO_MFA = BANKS["Sophtron Bank NoMFA"]
RECENT = (TODAY - dt.timedelta(days=45), TODAY)
UNKNOWN = "11111111-2222-3333-4444-555555555555"


async def call(sophtron: Client | AsyncClient, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method by name and await it when the client is asynchronous."""
    result = getattr(sophtron, name)(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


@pytest.fixture(params=["sync", "async"])
def sophtron(request: pytest.FixtureRequest, client: Client, async_client: AsyncClient) -> Any:
    return client if request.param == "sync" else async_client


# --- customers --------------------------------------------------------------------------------


def test_create_customer_is_idempotent_by_unique_id(client: Client) -> None:
    first = client.create_customer("v2-idem-family", "The Idem Family")
    assert isinstance(first, Customer)
    assert first.customer_id
    assert first.unique_id == "v2-idem-family"
    assert first.customer_name == "The Idem Family"
    assert first.source == "sophsync"
    assert first.member_ids == []

    again = client.create_customer("v2-idem-family", "Another Name", source="elsewhere")
    assert again.customer_id == first.customer_id
    assert again.customer_name == "The Idem Family"

    other = client.create_customer("v2-idem-family-2", "Second Family", source="tests")
    assert other.customer_id != first.customer_id
    assert other.source == "tests"

    listed = {c.customer_id: c for c in client.list_customers()}
    assert listed[first.customer_id].unique_id == "v2-idem-family"
    assert listed[other.customer_id].unique_id == "v2-idem-family-2"
    assert sum(c.unique_id == "v2-idem-family" for c in listed.values()) == 1


def test_list_customers(client: Client) -> None:
    created = {client.create_customer(f"v2-list-{n}", f"List {n}").customer_id for n in range(3)}
    customers = client.list_customers()
    assert all(isinstance(c, Customer) for c in customers)
    assert created <= {c.customer_id for c in customers}


def test_customers_are_per_developer_account(client: Client, sandbox: SandboxServer) -> None:
    mine = client.create_customer("v2-isolated", "Mine")
    with Client(OTHER_USER_ID, OTHER_ACCESS_KEY, base_url=sandbox.url, **FAST) as other:
        assert mine.customer_id not in {c.customer_id for c in other.list_customers()}
        assert other.get_customer_by_unique_id("v2-isolated") is None
        with pytest.raises(NotFound):
            other.get_customer(mine.customer_id)


def test_get_customer_by_unique_id(client: Client) -> None:
    created = client.create_customer("v2 by unique/id & more", "Lookup")
    found = client.get_customer_by_unique_id("v2 by unique/id & more")
    assert found is not None
    assert found.customer_id == created.customer_id
    assert found.unique_id == "v2 by unique/id & more"
    assert client.get_customer_by_unique_id("v2-never-created") is None


def test_get_customer(client: Client) -> None:
    created = client.create_customer("v2-get", "Get Me")
    customer = client.get_customer(created.customer_id)
    assert customer.customer_id == created.customer_id
    assert customer.customer_name == "Get Me"
    assert customer.unique_id == "v2-get"
    assert customer.member_ids == []
    with pytest.raises(NotFound):
        client.get_customer(UNKNOWN)


# --- members and their jobs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_types", "expected"),
    [
        (["aggregate", "history"], "aggregate|history"),
        (("verification", "identity", "aggregate"), "verification|identity|aggregate"),
        ("aggregate", "aggregate"),
        ("aggregate|history", "aggregate|history"),
    ],
)
def test_create_member_job_types(client: Client, job_types: Any, expected: str) -> None:
    customer = client.create_customer(f"v2-jobtypes-{expected}", "Job Types")
    tracker = client.create_member(
        customer.customer_id, NO_MFA, f"v2-jt-{expected}", "pw", job_types
    )
    assert isinstance(tracker, JobTracker)
    assert tracker.member_id
    assert tracker.login_id == tracker.member_id
    job = client.get_job(tracker.job_id)
    assert isinstance(job, Job)
    assert job.job_type == expected
    assert job.user_institution_id == tracker.member_id


def test_create_member_default_job_type(client: Client) -> None:
    customer = client.create_customer("v2-default-jobtype", "Default")
    tracker = client.create_member(customer.customer_id, NO_MFA, "v2-default-jt", "pw")
    assert client.get_job(tracker.job_id).job_type == "aggregate"


def test_create_member_needs_a_job_type(client: Client) -> None:
    customer = client.create_customer("v2-no-jobtype", "None")
    with pytest.raises(ValueError, match="job type"):
        client.create_member(customer.customer_id, NO_MFA, "v2-no-jt", "pw", [])


def test_create_member_for_an_unknown_customer(client: Client) -> None:
    with pytest.raises(NotFound):
        client.create_member(UNKNOWN, NO_MFA, "v2-orphan", "pw")


def test_get_job_v1_and_v2_agree(client: Client) -> None:
    customer = client.create_customer("v2-job-agree", "Agree")
    tracker = client.create_member(
        customer.customer_id, BANKS["Sophtron Bank Token"], "v2-agree", "pw"
    )
    v2 = client.wait_for_job(tracker.job_id, v2=True)
    v1 = client.wait_for_job(tracker.job_id)
    assert v2.state is v1.state is JobState.NEEDS_INPUT
    assert v2.prompt == v1.prompt
    assert client.get_job(tracker.job_id) == client.get_job_information_by_id(tracker.job_id)
    with pytest.raises(NotFound):
        client.get_job(UNKNOWN)


def _challenge_answer(prompt: Prompt) -> tuple[str, str | bool, str, Any]:
    """(challenge type, AnswerText, echo field of the job, echoed value) for a prompt."""
    if isinstance(prompt, CaptchaPrompt):
        return "captcha", "KX7PQ", "captcha_input", "KX7PQ"
    if isinstance(prompt, SecurityQuestionsPrompt):
        answers = [f"answer {n}" for n in range(len(prompt.questions))]
        text = json.dumps(answers)
        return "security_questions", text, "security_answer", text
    if isinstance(prompt, TokenMethodPrompt):
        option = prompt.options[-1]
        return "token_method", option, "token_choice", option
    if isinstance(prompt, TokenInputPrompt):
        return "token_input", "246810", "token_input", "246810"
    assert isinstance(prompt, PhoneConfirmationPrompt)
    return "phone_confirmation", True, "verify_phone_flag", True


CHALLENGE_SCRIPTS = {
    "Sophtron Bank Captcha": ["captcha"],
    "Sophtron Bank SecurityQuestion": ["security_questions"],
    "Sophtron Bank SecurityQuestion Multiple": ["security_questions"],
    "Sophtron Bank Token": ["token_method", "token_input"],
    "Sophtron Bank TokenRead": ["phone_confirmation"],
    "Sophtron Bank": ["captcha", "security_questions", "token_method", "token_input"],
}


@pytest.mark.anyio
@pytest.mark.parametrize("bank", sorted(CHALLENGE_SCRIPTS))
async def test_answer_challenge_for_each_kind(sophtron: Any, bank: str) -> None:
    kind = "async" if isinstance(sophtron, AsyncClient) else "sync"
    customer = await call(sophtron, "create_customer", f"v2-challenge-{bank}-{kind}", bank)
    tracker = await call(
        sophtron,
        "create_member",
        customer.customer_id,
        BANKS[bank],
        f"v2-challenge-{bank}-{kind}",
        "pw",
        ["aggregate"],
    )
    seen: list[str] = []
    status: JobStatus = await call(sophtron, "wait_for_job", tracker.job_id, v2=True)
    while status.prompt is not None and len(seen) < 10:
        job = await call(sophtron, "get_job", tracker.job_id)
        assert job_status(job).prompt == status.prompt
        assert job.last_status == "Waiting"
        challenge, answer, echo_field, echoed = _challenge_answer(status.prompt)
        seen.append(challenge)
        if isinstance(status.prompt, SecurityQuestionsPrompt):
            expected = 3 if bank.endswith("Multiple") else 1
            assert len(status.prompt.questions) == expected
        assert await call(sophtron, "answer_challenge", tracker.job_id, challenge, answer) is None
        after = await call(sophtron, "get_job", tracker.job_id)
        assert getattr(after, echo_field) == echoed
        status = await call(sophtron, "wait_for_job", tracker.job_id, v2=True)
    assert seen == CHALLENGE_SCRIPTS[bank]
    assert status.state is JobState.SUCCEEDED
    accounts = await call(sophtron, "list_member_accounts", customer.customer_id, tracker.member_id)
    assert accounts


def test_answer_challenge_accepts_sophtron_names(client: Client) -> None:
    customer = client.create_customer("v2-sophtron-names", "Names")
    tracker = client.create_member(customer.customer_id, BANKS["Sophtron Bank"], "v2-names", "pw")
    answers = {
        "captcha": ("CaptchaImage", "ABCDE"),
        "security_questions": ("SecurityQuestion", '["blue"]'),
        "token_method": ("TokenMethod", None),
        "token_input": ("TokenInput", "123456"),
    }
    status = client.wait_for_job(tracker.job_id, v2=True)
    seen = []
    while status.prompt is not None and len(seen) < 10:
        name, answer = answers[status.prompt.kind]
        if isinstance(status.prompt, TokenMethodPrompt):
            answer = status.prompt.options[0]
        assert answer is not None
        client.answer_challenge(tracker.job_id, name, answer)
        seen.append(name)
        status = client.wait_for_job(tracker.job_id, v2=True)
    assert seen == ["CaptchaImage", "SecurityQuestion", "TokenMethod", "TokenInput"]
    assert status.state is JobState.SUCCEEDED


def test_answer_challenge_the_job_is_not_waiting_for(client: Client) -> None:
    customer = client.create_customer("v2-not-waiting", "Not Waiting")
    tracker = client.create_member(
        customer.customer_id, BANKS["Sophtron Bank SecurityQuestion"], "v2-not-waiting", "pw"
    )
    assert client.wait_for_job(tracker.job_id, v2=True).state is JobState.NEEDS_INPUT
    with pytest.raises(BadRequest) as raised:
        client.answer_challenge(tracker.job_id, "token_input", "123456")
    assert raised.value.status_code == 400
    with pytest.raises(BadRequest):
        client.answer_challenge(tracker.job_id, "NoSuchChallenge", "x")
    # The job still waits for its question and takes the right answer.
    client.answer_challenge(tracker.job_id, "security_questions", '["green"]')
    assert client.wait_for_job(tracker.job_id, v2=True).state is JobState.SUCCEEDED
    with pytest.raises(BadRequest):
        client.answer_challenge(tracker.job_id, "security_questions", '["again"]')


def test_wait_for_job_v2_raises_when_the_job_fails(client: Client) -> None:
    customer = client.create_customer("v2-fails", "Fails")
    tracker = client.create_member(customer.customer_id, NO_MFA, "v2-fails+bad-password", "pw")
    with pytest.raises(JobFailed) as raised:
        client.wait_for_job(tracker.job_id, v2=True)
    assert raised.value.job is not None
    assert raised.value.job.job_id == tracker.job_id


# --- the whole customer lifecycle -------------------------------------------------------------


def _check_transactions(
    transactions: list[Transaction], account_id: str, start: dt.date, end: dt.date
) -> None:
    for txn in transactions:
        assert isinstance(txn.amount, Decimal)
        assert txn.transaction_id
        assert txn.id
        assert txn.account_id == account_id
        assert txn.booked_on is not None
        assert start <= txn.booked_on <= end
        assert txn.status in {"Pending", "Posted"}


@pytest.mark.anyio
async def test_customer_lifecycle(sophtron: Any) -> None:
    kind = "async" if isinstance(sophtron, AsyncClient) else "sync"
    unique = f"v2-lifecycle-{kind}"
    customer: Customer = await call(sophtron, "create_customer", unique, f"Lifecycle {kind}")
    customer_id = customer.customer_id
    again = await call(sophtron, "create_customer", unique, "ignored")
    assert again.customer_id == customer_id
    assert customer_id in {c.customer_id for c in await call(sophtron, "list_customers")}
    found = await call(sophtron, "get_customer_by_unique_id", unique)
    assert found is not None
    assert found.customer_id == customer_id
    assert await call(sophtron, "get_customer_by_unique_id", f"{unique}-missing") is None

    # Two members at NoMFA (six accounts each) and one at the token bank.
    trackers: list[JobTracker] = []
    for name in (f"v2-life-a-{kind}+daily=4", f"v2-life-b-{kind}+accounts=2"):
        tracker = await call(
            sophtron, "create_member", customer_id, NO_MFA, name, "pw", ["aggregate", "history"]
        )
        assert (await call(sophtron, "get_job", tracker.job_id)).job_type == "aggregate|history"
        status = await call(sophtron, "wait_for_job", tracker.job_id, v2=True)
        assert status.state is JobState.SUCCEEDED
        trackers.append(tracker)
    member_a, member_b = (t.member_id for t in trackers)
    assert member_a is not None
    assert member_b is not None

    customer = await call(sophtron, "get_customer", customer_id)
    assert set(customer.member_ids) == {member_a, member_b}

    members = await call(sophtron, "list_members", customer_id)
    assert all(isinstance(m, Member) for m in members)
    assert {m.member_id for m in members} == {member_a, member_b}
    member = await call(sophtron, "get_member", customer_id, member_a)
    assert member.member_id == member_a
    assert member.institution_id == NO_MFA
    assert member.institution_name == "Sophtron Bank NoMFA"
    assert member.job_id == trackers[0].job_id
    assert member.user_name == f"v2-life-a-{kind}+daily=4"
    assert member.status == "Connected"
    with pytest.raises(NotFound):
        await call(sophtron, "get_member", customer_id, UNKNOWN)

    accounts_a: list[Account] = await call(sophtron, "list_member_accounts", customer_id, member_a)
    accounts_b: list[Account] = await call(sophtron, "list_member_accounts", customer_id, member_b)
    assert len(accounts_a) == 6
    assert len(accounts_b) == 2
    assert all(a.member_id == member_a for a in accounts_a)
    assert all(a.member_id == member_b for a in accounts_b)
    assert accounts_a[0].account_name == "Primary Checking"
    assert accounts_a[0].mask == "1234"
    everything = await call(sophtron, "list_customer_accounts", customer_id)
    assert {a.account_id for a in everything} == {a.account_id for a in accounts_a + accounts_b}

    for listed in accounts_a:
        account = await call(sophtron, "get_customer_account", customer_id, listed.account_id)
        assert account.account_id == listed.account_id
        assert account.balance == listed.balance
        assert account.account_name == listed.account_name
    with pytest.raises(NotFound):
        await call(sophtron, "get_customer_account", customer_id, UNKNOWN)

    start, end = RECENT
    statuses: set[str] = set()
    for account in accounts_a:
        transactions = await call(
            sophtron, "get_customer_transactions", customer_id, account.account_id, start, end
        )
        _check_transactions(transactions, account.account_id, start, end)
        statuses |= {t.status for t in transactions}
        # v1 shows the same transactions of the same account.
        v1 = await call(
            sophtron, "get_transactions_by_transaction_date", account.account_id, start, end
        )
        assert [(t.provider_id, t.amount, t.booked_on) for t in v1] == [
            (t.provider_id, t.amount, t.booked_on) for t in transactions
        ]
    assert statuses == {"Pending", "Posted"}
    assert (
        await call(
            sophtron, "get_customer_transactions", customer_id, accounts_a[0].account_id, end, start
        )
        == []
    )

    refresh = await call(sophtron, "refresh_member", customer_id, member_a)
    assert refresh.job_id != trackers[0].job_id
    assert refresh.member_id == member_a
    assert (await call(sophtron, "get_job", refresh.job_id)).job_type == "aggregate"
    refreshed = await call(sophtron, "wait_for_job", refresh.job_id, v2=True)
    assert refreshed.state is JobState.SUCCEEDED
    assert (await call(sophtron, "get_member", customer_id, member_a)).job_id == refresh.job_id

    update = await call(
        sophtron,
        "update_member",
        customer_id,
        member_b,
        f"v2-life-b-{kind}-renamed",
        "new-pw",
        ["aggregate", "identity"],
    )
    assert update.member_id == member_b
    assert (await call(sophtron, "get_job", update.job_id)).job_type == "aggregate|identity"
    updated = await call(sophtron, "wait_for_job", update.job_id, v2=True)
    assert updated.state is JobState.SUCCEEDED
    renamed = await call(sophtron, "get_member", customer_id, member_b)
    assert renamed.user_name == f"v2-life-b-{kind}-renamed"

    assert await call(sophtron, "delete_member", customer_id, member_b) is None
    assert {m.member_id for m in await call(sophtron, "list_members", customer_id)} == {member_a}
    with pytest.raises(NotFound):
        await call(sophtron, "get_member", customer_id, member_b)
    assert (await call(sophtron, "get_customer", customer_id)).member_ids == [member_a]
    remaining = await call(sophtron, "list_customer_accounts", customer_id)
    assert {a.account_id for a in remaining} == {a.account_id for a in accounts_a}

    assert await call(sophtron, "delete_customer", customer_id) is None
    with pytest.raises(NotFound) as raised:
        await call(sophtron, "get_customer", customer_id)
    assert raised.value.status_code == 404
    assert await call(sophtron, "get_customer_by_unique_id", unique) is None
    assert customer_id not in {c.customer_id for c in await call(sophtron, "list_customers")}
    # Its members went with it.
    with pytest.raises(NotFound):
        await call(sophtron, "get_user_institution_by_id", member_a)
    with pytest.raises(NotFound):
        await call(sophtron, "list_members", customer_id)
