"""Connecting bank logins: the seven test banks, failures, timeouts, retries, permissions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sophsync.core import connect, credentials, families, link, quota
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, Conflict, NotFound, PermissionDenied
from sophsync.sandbox import SandboxServer
from sophsync.sophtron import (
    CaptchaPrompt,
    Client,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
    job_status,
)
from sophsync.sophtron.mfa import FAILURE_MESSAGES, FailureReason
from sophsync.store.models import Account, Connection, ConnectionStatus, ProviderAccount
from tests.conftest import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_USER_ID, USER_ID
from tests.core.conftest import ADMIN_PASSWORD, ANSWERS, Clock, institution_id, truth

#: The prompts each test bank asks, in order.
TEST_BANKS: dict[str, list[str]] = {
    "Sophtron Bank": ["captcha", "security_questions", "token_method", "token_input"],
    "Sophtron Bank NoMFA": [],
    "Sophtron Bank Captcha": ["captcha"],
    "Sophtron Bank SecurityQuestion": ["security_questions"],
    "Sophtron Bank SecurityQuestion Multiple": ["security_questions"],
    "Sophtron Bank Token": ["token_method", "token_input"],
    "Sophtron Bank TokenRead": ["phone_confirmation"],
}
QUESTIONS = {"Sophtron Bank SecurityQuestion": 1, "Sophtron Bank SecurityQuestion Multiple": 3}
NO_MFA = "Sophtron Bank NoMFA"
ONE_QUESTION = "Sophtron Bank SecurityQuestion"
CREATE = "POST /api/UserInstitution/CreateUserInstitution"
RETRY = "POST /api/UserInstitution/RetryAddingUserInstitution"
UPDATE = "POST /api/UserInstitution/UpdateUserInstitution"
DELETE = "POST /api/UserInstitution/DeleteUserInstitution"
JOB = "POST /api/Job/GetJobInformationByID"
TOKEN_INPUT = "POST /api/Job/UpdateJobTokenInput"


def stats(sandbox: SandboxServer) -> dict[str, Any]:
    return httpx.get(f"{sandbox.root}/_sandbox/stats", timeout=30).json()


def calls(sandbox: SandboxServer, route: str) -> int:
    return sum(stats(sandbox)["routes"].get(route, {}).values())


def row(core: Core, connection_id: int) -> Connection:
    with core.session() as session:
        found = session.get(Connection, connection_id)
        assert found is not None
        session.expunge(found)
        return found


def answer_for(prompt: Prompt, given: dict[str, Any]) -> Any:
    answer = given[prompt.kind]
    if isinstance(prompt, SecurityQuestionsPrompt) and isinstance(answer, list):
        return answer[: len(prompt.questions)]
    return answer


def check_stored_challenge(core: Core, view: connect.ConnectionView) -> None:
    """The pending prompt is stored encrypted, and the view gives it back."""
    assert view.prompt is not None
    stored = row(core, view.id)
    assert stored.challenge_kind == view.prompt.kind
    assert stored.challenge_enc is not None
    token = bytes(stored.challenge_enc)
    assert not token.lstrip().startswith((b"{", b"["))
    with pytest.raises(json.JSONDecodeError):
        json.loads(token)
    assert b'"kind"' not in token
    assert view.prompt.kind.encode() not in token
    if isinstance(view.prompt, SecurityQuestionsPrompt):
        for question in view.prompt.questions:
            assert question.encode() not in token
    payload = core.vault.decrypt_json(token)
    assert payload == connect.prompt_payload(view.prompt)
    assert connect.prompt_from_payload(payload) == view.prompt
    assert view.status is ConnectionStatus.NEEDS_INPUT
    assert view.waiting_for_person
    assert view.settled


def walk(
    core: Core,
    actor: Actor,
    view: connect.ConnectionView,
    answers: dict[str, Any] | None = None,
) -> tuple[connect.ConnectionView, list[Prompt]]:
    """Poll and answer every prompt of a started connection until it settles without one."""
    given = {**ANSWERS, **(answers or {})}
    prompts: list[Prompt] = []
    for _ in range(12):
        view = connect.wait_for_connection(core, view.id, interval=0, timeout=10)
        if view.prompt is None:
            return view, prompts
        check_stored_challenge(core, view)
        assert connect.get_connection(core, actor, view.id) == view
        prompts.append(view.prompt)
        view = connect.answer_challenge(core, actor, view.id, answer_for(view.prompt, given))
        assert view.status is ConnectionStatus.CONNECTING
        assert view.prompt is None
        assert row(core, view.id).challenge_enc is None
    raise AssertionError("the connection kept asking")


def start(
    core: Core, actor: Actor, bank: str, username: str, password: str = "bank-password"
) -> connect.ConnectionView:
    return connect.start_connection(
        core, actor, institution_id(core, actor, bank), username, password
    )


def assert_connected(core: Core, actor: Actor, view: connect.ConnectionView) -> None:
    assert view.status is ConnectionStatus.CONNECTED, (view.error_code, view.message)
    assert view.prompt is None
    assert view.error_code is None
    assert view.message == "Connected."
    assert not view.waiting_for_person
    found = link.provider_accounts(core, actor, view.id)
    assert len(found) == 6
    assert {item.connection_id for item in found} == {view.id}
    assert all(item.linked_account_id is None for item in found)
    stored = row(core, view.id)
    assert stored.challenge_enc is None
    assert stored.challenge_kind is None
    assert stored.job_id is None
    assert stored.data_fresh_at == core.now()


def assert_failed(view: connect.ConnectionView, code: str) -> None:
    assert view.status is ConnectionStatus.FAILED, (view.status, view.error_code)
    assert view.error_code == code
    assert view.prompt is None
    assert view.message == connect.MESSAGES[code]


# --- the seven test banks ----------------------------------------------------------------------


def test_every_test_bank_walks_its_prompts_and_connects(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    connected = []
    for number, (bank, kinds) in enumerate(TEST_BANKS.items()):
        view = start(core, admin, bank, f"walker-{number}")
        assert view.status is ConnectionStatus.CONNECTING
        assert view.institution_name == bank
        assert view.provider_login_id
        assert view.prompt is None
        with pytest.raises(Conflict):  # nothing asked yet
            connect.answer_challenge(core, admin, view.id, "anything")

        final, prompts = walk(core, admin, view)
        assert [prompt.kind for prompt in prompts] == kinds, bank
        assert_connected(core, admin, final)
        assert final.provider_login_id == view.provider_login_id
        connected.append(final.id)

        for prompt in prompts:
            if isinstance(prompt, SecurityQuestionsPrompt):
                assert len(prompt.questions) == QUESTIONS.get(bank, 1), bank
                assert all("&#39;" not in question for question in prompt.questions)
            if isinstance(prompt, CaptchaPrompt):
                assert prompt.image_png.startswith(b"\x89PNG\r\n\x1a\n")
            if isinstance(prompt, TokenMethodPrompt):
                assert len(prompt.options) == 3
            if isinstance(prompt, TokenInputPrompt):
                assert prompt.label == "Token"
            if isinstance(prompt, PhoneConfirmationPrompt):
                assert prompt.code.isdigit()
                assert len(prompt.code) == 6
        if bank == "Sophtron Bank SecurityQuestion Multiple":
            (several,) = prompts
            assert isinstance(several, SecurityQuestionsPrompt)
            assert any("'" in question for question in several.questions)

    listed = connect.list_connections(core, admin)
    assert [item.id for item in listed] == connected
    assert {item.status for item in listed} == {ConnectionStatus.CONNECTED}
    assert len(link.provider_accounts(core, admin)) == 6 * len(TEST_BANKS)
    logins = {login["UserInstitutionID"] for login in truth(engine_sandbox)["Logins"]}
    assert {item.provider_login_id for item in listed} == logins
    assert calls(engine_sandbox, CREATE) == len(TEST_BANKS)


# --- failures ---------------------------------------------------------------------------------


def test_login_failures_are_recorded_with_their_reason(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    wrong_password = connect.wait_for_connection(
        core, start(core, admin, NO_MFA, "fail-1", "wrong").id, interval=0, timeout=10
    )
    assert_failed(wrong_password, "job_bad_credentials")
    assert "username or password" in wrong_password.message
    assert "Check" in wrong_password.message
    assert wrong_password.message == FAILURE_MESSAGES[FailureReason.BAD_CREDENTIALS]
    stored = row(core, wrong_password.id)
    assert stored.last_error_code == "job_bad_credentials"
    assert stored.last_error == wrong_password.message

    bad_username = connect.wait_for_connection(
        core, start(core, admin, ONE_QUESTION, "fail-2-bad-password").id, interval=0, timeout=10
    )
    assert_failed(bad_username, "job_bad_credentials")

    institution = connect.wait_for_connection(
        core, start(core, admin, NO_MFA, "fail-3-institution-error").id, interval=0, timeout=10
    )
    assert_failed(institution, "job_institution_error")
    assert row(core, institution.id).last_error_code == "job_institution_error"

    empty = connect.wait_for_connection(
        core, start(core, admin, NO_MFA, "fail-4-no-accounts").id, interval=0, timeout=10
    )
    assert_failed(empty, "no_accounts")
    assert link.provider_accounts(core, admin, empty.id) == []

    # Settled failures stay settled; nothing in them can be answered.
    for view in (wrong_password, bad_username, institution, empty):
        assert connect.poll_connection(core, view.id) == view
        with pytest.raises(Conflict) as raised:
            connect.answer_challenge(core, admin, view.id, "anything")
        assert raised.value.code == "no_challenge"
    assert [view.status for view in connect.list_connections(core, admin)] == [
        ConnectionStatus.FAILED
    ] * 4

    # Input Sophtron would refuse is refused before any login is created.
    creates = calls(engine_sandbox, CREATE)
    with pytest.raises(BadInput) as unknown:
        connect.start_connection(core, admin, "00000000-dead-beef-0000-000000000000", "smith", "pw")
    assert unknown.value.field == "institution_id"
    with pytest.raises(BadInput) as blank:
        connect.start_connection(core, admin, "  ", "smith", "pw")
    assert blank.value.field == "institution_id"
    with pytest.raises(BadInput) as nameless:
        connect.start_connection(core, admin, institution_id(core, admin, NO_MFA), " ", "pw")
    assert nameless.value.field == "username"
    with pytest.raises(BadInput) as short_query:
        connect.search_institutions(core, admin, " S ")
    assert short_query.value.field == "query"
    assert len(connect.list_connections(core, admin)) == 4
    assert calls(engine_sandbox, CREATE) == creates == 4


def test_wrong_answers_fail_the_job(core: Core, admin: Actor) -> None:
    question, prompts = walk(
        core,
        admin,
        start(core, admin, ONE_QUESTION, "wrong-1"),
        {"security_questions": ["wrong"]},
    )
    assert [prompt.kind for prompt in prompts] == ["security_questions"]
    assert_failed(question, "job_wrong_answer")
    assert question.message == FAILURE_MESSAGES[FailureReason.WRONG_ANSWER]

    captcha, prompts = walk(
        core, admin, start(core, admin, "Sophtron Bank Captcha", "wrong-2"), {"captcha": "wrong"}
    )
    assert [prompt.kind for prompt in prompts] == ["captcha"]
    assert_failed(captcha, "job_wrong_answer")

    token, prompts = walk(
        core, admin, start(core, admin, "Sophtron Bank Token", "wrong-3"), {"token_input": "wrong"}
    )
    assert [prompt.kind for prompt in prompts] == ["token_method", "token_input"]
    assert_failed(token, "job_wrong_answer")
    assert link.provider_accounts(core, admin) == []


def test_unanswered_prompt_past_the_mfa_timeout_fails(
    make_core: Callable[..., Core], make_sandbox: Callable[..., SandboxServer]
) -> None:
    # Long enough for the first poll to see the prompt on a loaded machine, short enough to wait.
    sandbox = make_sandbox(mfa_timeout=2.0)
    core = make_core(sandbox)
    actor = families.create_family(core, "Slow", "slow@example.com", ADMIN_PASSWORD)
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)

    view = connect.wait_for_connection(
        core, start(core, actor, ONE_QUESTION, "sleepy").id, interval=0, timeout=10
    )
    assert view.status is ConnectionStatus.NEEDS_INPUT
    job_id = row(core, view.id).job_id
    assert job_id is not None
    time.sleep(2.3)
    # Sophtron's side: the job gave up waiting.
    with Client(USER_ID, ACCESS_KEY, base_url=sandbox.url) as client:
        expired = job_status(client.get_job_information_by_id(job_id))
    assert expired.failure is FailureReason.MFA_TIMEOUT
    view = connect.wait_for_connection(core, view.id, interval=0.01, timeout=5)
    assert_failed(view, "job_mfa_timeout")
    assert view.message == FAILURE_MESSAGES[FailureReason.MFA_TIMEOUT]
    assert row(core, view.id).challenge_enc is None


def test_a_job_that_never_finishes_times_out_and_can_be_checked_again(
    core: Core, admin: Actor, engine_sandbox: SandboxServer, clock: Clock, member: Actor
) -> None:
    view = start(core, admin, NO_MFA, "stuck-never-finishes")
    job_id = row(core, view.id).job_id
    assert connect.poll_connection(core, view.id).status is ConnectionStatus.CONNECTING
    # Not yet past the limit: still connecting.
    clock.advance(seconds=core.settings.connect_timeout_seconds - 1)
    assert connect.poll_connection(core, view.id).status is ConnectionStatus.CONNECTING

    clock.advance(seconds=2)
    timed_out = connect.poll_connection(core, view.id)
    assert timed_out.status is ConnectionStatus.TIMED_OUT
    assert timed_out.error_code == "timed_out"
    assert timed_out.message == connect.MESSAGES["timed_out"]
    assert timed_out.settled
    assert not timed_out.waiting_for_person
    assert connect.get_connection(core, member, view.id) == timed_out

    with pytest.raises(PermissionDenied):
        connect.check_again(core, member, view.id)
    polls = calls(engine_sandbox, JOB)
    again = connect.check_again(core, admin, view.id)
    # Back to polling the same job, with fresh time (the clock stands still meanwhile).
    assert again.status is ConnectionStatus.CONNECTING
    assert calls(engine_sandbox, JOB) == polls + 1
    assert calls(engine_sandbox, CREATE) == 1
    assert calls(engine_sandbox, RETRY) == 0
    assert row(core, view.id).job_id == job_id

    clock.advance(seconds=core.settings.connect_timeout_seconds + 1)
    assert connect.poll_connection(core, view.id).status is ConnectionStatus.TIMED_OUT
    assert calls(engine_sandbox, CREATE) == 1


# --- retry and update -----------------------------------------------------------------------


def test_retry_after_a_failure_needs_no_bank_password(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    failed, _ = walk(
        core, admin, start(core, admin, ONE_QUESTION, "retrier"), {"security_questions": "wrong"}
    )
    assert_failed(failed, "job_wrong_answer")
    old_job = row(core, failed.id).job_id
    creates = calls(engine_sandbox, CREATE)

    retried = connect.retry_connection(core, admin, failed.id)
    assert retried.id == failed.id
    assert retried.status is ConnectionStatus.CONNECTING
    assert retried.provider_login_id == failed.provider_login_id
    new_job = row(core, failed.id).job_id
    assert new_job is not None
    assert new_job != old_job
    assert calls(engine_sandbox, RETRY) == 1
    assert calls(engine_sandbox, CREATE) == creates == 1

    final, prompts = walk(core, admin, retried)
    assert [prompt.kind for prompt in prompts] == ["security_questions"]
    assert_connected(core, admin, final)
    assert len(connect.list_connections(core, admin)) == 1


def test_update_login_after_a_bad_password_connects(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    failed = connect.wait_for_connection(
        core, start(core, admin, NO_MFA, "updater", "wrong").id, interval=0, timeout=10
    )
    assert_failed(failed, "job_bad_credentials")
    updated = connect.update_login(core, admin, failed.id, "updater", "the-right-password")
    assert updated.status is ConnectionStatus.CONNECTING
    assert calls(engine_sandbox, UPDATE) == 1
    assert calls(engine_sandbox, CREATE) == 1
    final = connect.wait_for_connection(core, updated.id, interval=0, timeout=10)
    assert_connected(core, admin, final)
    assert final.provider_login_id == failed.provider_login_id


# --- answering --------------------------------------------------------------------------------


def test_answers_that_cannot_be_sent(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    connected = connect.wait_for_connection(
        core, start(core, admin, NO_MFA, "answered").id, interval=0, timeout=10
    )
    with pytest.raises(Conflict) as nothing_asked:
        connect.answer_challenge(core, admin, connected.id, "123456")
    assert nothing_asked.value.code == "no_challenge"

    view = connect.wait_for_connection(
        core, start(core, admin, "Sophtron Bank Token", "chooser").id, interval=0, timeout=10
    )
    assert isinstance(view.prompt, TokenMethodPrompt)
    sent = calls(engine_sandbox, TOKEN_INPUT)
    with pytest.raises(BadInput) as not_offered:
        connect.answer_challenge(core, admin, view.id, "Carrier pigeon")
    assert not_offered.value.field == "answer"
    assert "Carrier pigeon" not in not_offered.value.message
    bad_answers: list[Any] = ["7", ["0"]]
    for answer in bad_answers:
        with pytest.raises(BadInput) as refused:
            connect.answer_challenge(core, admin, view.id, answer)
        assert refused.value.field == "answer"
    assert calls(engine_sandbox, TOKEN_INPUT) == sent
    # The prompt is still there, and a good answer (the option's display label) goes through.
    assert connect.get_connection(core, admin, view.id) == view
    check_stored_challenge(core, view)
    label = view.prompt.labels[1]
    assert label != view.prompt.options[1]
    connect.answer_challenge(core, admin, view.id, label)
    final, prompts = walk(core, admin, view)
    assert [prompt.kind for prompt in prompts] == ["token_input"]
    assert_connected(core, admin, final)

    several = connect.wait_for_connection(
        core,
        start(core, admin, "Sophtron Bank SecurityQuestion Multiple", "counting").id,
        interval=0,
        timeout=10,
    )
    with pytest.raises(BadInput) as too_few:
        connect.answer_challenge(core, admin, several.id, ["blue"])
    assert too_few.value.field == "answer"
    phone = connect.wait_for_connection(
        core, start(core, admin, "Sophtron Bank TokenRead", "phoning").id, interval=0, timeout=10
    )
    with pytest.raises(BadInput) as not_confirmed:
        connect.answer_challenge(core, admin, phone.id, False)
    assert not_confirmed.value.field == "answer"
    assert connect.get_connection(core, admin, phone.id).status is ConnectionStatus.NEEDS_INPUT


# --- removal ----------------------------------------------------------------------------------


def test_remove_connection_deletes_it_at_sophtron_and_here(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    view = connect.wait_for_connection(
        core, start(core, admin, NO_MFA, "remover").id, interval=0, timeout=10
    )
    assert_connected(core, admin, view)
    linked = link.link_all(core, admin, view.id, history_days=30)
    assert len(linked) == 6
    keep = connect.wait_for_connection(
        core, start(core, admin, ONE_QUESTION, "keeper").id, interval=0, timeout=10
    )

    connect.remove_connection(core, admin, view.id)
    assert calls(engine_sandbox, DELETE) == 1
    with pytest.raises(NotFound):
        connect.get_connection(core, admin, view.id)
    assert [item.id for item in connect.list_connections(core, admin)] == [keep.id]
    assert link.provider_accounts(core, admin, view.id) == []
    with core.session() as session:
        assert (
            session.scalars(
                select(ProviderAccount).where(ProviderAccount.connection_id == view.id)
            ).all()
            == []
        )
        accounts = session.scalars(select(Account).where(Account.id.in_(linked))).all()
    # The local accounts stay, unlinked.
    assert len(accounts) == 6
    assert all(account.provider_account_id is None for account in accounts)
    logins = {login["UserInstitutionID"] for login in truth(engine_sandbox)["Logins"]}
    assert view.provider_login_id not in logins
    assert keep.provider_login_id in logins
    with pytest.raises(NotFound):
        connect.remove_connection(core, admin, view.id)

    # A login already gone at Sophtron is still removed here.
    with Client(USER_ID, ACCESS_KEY, base_url=engine_sandbox.url) as client:
        assert keep.provider_login_id is not None
        client.delete_user_institution(keep.provider_login_id)
    connect.remove_connection(core, admin, keep.id)
    assert connect.list_connections(core, admin) == []


# --- permissions and isolation ----------------------------------------------------------------


def test_members_read_but_cannot_act(
    core: Core, admin: Actor, member: Actor, engine_sandbox: SandboxServer
) -> None:
    connected = connect.wait_for_connection(
        core, start(core, admin, NO_MFA, "family-bank").id, interval=0, timeout=10
    )
    asking = connect.wait_for_connection(
        core, start(core, admin, ONE_QUESTION, "family-question").id, interval=0, timeout=10
    )
    assert asking.status is ConnectionStatus.NEEDS_INPUT
    before = stats(engine_sandbox)["total"]

    bank = "926623ca-5952-4921-8f77-2023f1cdde8e"
    refused: list[Callable[[], object]] = [
        lambda: connect.start_connection(core, member, bank, "kid-login", "pw"),
        lambda: connect.answer_challenge(core, member, asking.id, "blue"),
        lambda: connect.retry_connection(core, member, connected.id),
        lambda: connect.update_login(core, member, connected.id, "kid", "pw"),
        lambda: connect.check_again(core, member, connected.id),
        lambda: connect.remove_connection(core, member, connected.id),
        lambda: connect.remove_connection(core, member, asking.id),
        lambda: link.link_all(core, member, connected.id),
    ]
    for action in refused:
        with pytest.raises(PermissionDenied):
            action()
    assert stats(engine_sandbox)["total"] == before

    assert connect.list_connections(core, member) == connect.list_connections(core, admin)
    assert [item.id for item in connect.list_connections(core, member)] == [
        connected.id,
        asking.id,
    ]
    assert connect.get_connection(core, member, connected.id) == connected
    seen = connect.get_connection(core, member, asking.id)
    assert seen.prompt == asking.prompt
    assert seen.status is ConnectionStatus.NEEDS_INPUT
    assert len(link.provider_accounts(core, member, connected.id)) == 6


def test_another_family_cannot_see_the_connection(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    ours = connect.wait_for_connection(
        core, start(core, admin, ONE_QUESTION, "private").id, interval=0, timeout=10
    )
    assert ours.status is ConnectionStatus.NEEDS_INPUT
    other = families.create_family(core, "Strangers", "strangers@example.com", ADMIN_PASSWORD)
    credentials.save_credentials(core, other, OTHER_USER_ID, OTHER_ACCESS_KEY)

    assert connect.list_connections(core, other) == []
    assert link.provider_accounts(core, other) == []
    hidden: list[Callable[[], object]] = [
        lambda: connect.get_connection(core, other, ours.id),
        lambda: connect.answer_challenge(core, other, ours.id, "blue"),
        lambda: connect.retry_connection(core, other, ours.id),
        lambda: connect.update_login(core, other, ours.id, "x", "y"),
        lambda: connect.check_again(core, other, ours.id),
        lambda: connect.remove_connection(core, other, ours.id),
    ]
    for action in hidden:
        with pytest.raises(NotFound):
            action()
    assert calls(engine_sandbox, DELETE) == 0
    # Still ours, still asking, and it can be finished.
    assert connect.get_connection(core, admin, ours.id) == ours
    final, _ = walk(core, admin, ours)
    assert_connected(core, admin, final)
    assert link.provider_accounts(core, other) == []


# --- request metering -------------------------------------------------------------------------


def test_metering_counts_every_request_sent_for_the_family(
    core: Core, engine_sandbox: SandboxServer
) -> None:
    actor = families.create_family(core, "Counted", "counted@example.com", ADMIN_PASSWORD)
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    saved = stats(engine_sandbox)["total"]
    spent = quota.usage(core, actor.family_id)

    final, prompts = walk(core, actor, start(core, actor, "Sophtron Bank", "metered"))
    assert len(prompts) == 4
    assert_connected(core, actor, final)
    failed = connect.wait_for_connection(
        core, start(core, actor, NO_MFA, "metered-2", "wrong").id, interval=0, timeout=10
    )
    connect.retry_connection(core, actor, failed.id)
    connect.wait_for_connection(core, failed.id, interval=0, timeout=10)
    connect.remove_connection(core, actor, failed.id)

    counted = stats(engine_sandbox)
    assert counted["users"] == {USER_ID: counted["total"]}
    # Every request of the connect flow is metered ...
    assert counted["total"] - saved > 15
    assert quota.usage(core, actor.family_id) - spent == counted["total"] - saved
    # ... and the family's usage is every request Sophtron counted for it.
    assert quota.usage(core, actor.family_id) == counted["total"]
