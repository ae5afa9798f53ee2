"""Job classification, MFA prompts and answers (reference §9.1-§9.5)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from sophsync.sophtron._calls import Reply, answer_prompt, choose_option
from sophsync.sophtron.errors import AnswerRejected
from sophsync.sophtron.mfa import (
    CaptchaPrompt,
    FailureReason,
    JobState,
    PhoneConfirmationPrompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
    failure_reason,
    job_status,
    pending_prompt,
)
from sophsync.sophtron.models import Job

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sophtron"
JOB_ID = "5e1b2c3d-0000-4000-8000-00000000abcd"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
CTX = SimpleNamespace(user_id="3f2504e0-4f89-11d3-9a0c-0305e82c3301")


def make_job(**fields: Any) -> Job:
    return Job.model_validate({"JobID": JOB_ID, **fields})


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    return buffer.getvalue()


def png_base64() -> str:
    return base64.b64encode(png_bytes()).decode("ascii")


# Every MFA trigger at once (each rung below removes the ones above it).
ALL_PROMPTS: dict[str, Any] = {
    "SecurityQuestion": '["What is your favorite color?"]',
    "TokenMethod": '["xxx-xxx-1234","xxx-xxx-5678"]',
    "TokenSentFlag": True,
    "TokenInputName": "Token",
    "TokenInput": None,
    "TokenRead": "123456",
    "VerifyPhoneFlag": None,
    "CaptchaImage": "iVBORw0KGgo=",
}


# --- §9.3 precedence -----------------------------------------------------------------------------


def test_rung_1_security_question_wins_over_everything() -> None:
    job = make_job(**ALL_PROMPTS, LastStatus="Waiting")
    status = job_status(job)
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == SecurityQuestionsPrompt(("What is your favorite color?",))
    assert pending_prompt(job) == status.prompt
    assert status.failure is None
    assert not status.done


@pytest.mark.parametrize("cleared", [None, "", "[]"])
def test_rung_2_token_method_when_no_security_question(cleared: str | None) -> None:
    job = make_job(**{**ALL_PROMPTS, "SecurityQuestion": cleared})
    status = job_status(job)
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == TokenMethodPrompt(("xxx-xxx-1234", "xxx-xxx-5678"))


@pytest.mark.parametrize("token_input", [None, "", "   "])
def test_rung_3_token_sent_with_empty_token_input(token_input: str | None) -> None:
    job = make_job(
        **{**ALL_PROMPTS, "SecurityQuestion": None, "TokenMethod": None, "TokenInput": token_input}
    )
    status = job_status(job)
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == TokenInputPrompt("Token")


def test_rung_3_accepts_string_token_sent_flag() -> None:
    job = make_job(TokenSentFlag="True", TokenInputName="PIN", TokenRead="999", CaptchaImage="x")
    assert pending_prompt(job) == TokenInputPrompt("PIN")


def test_rung_3_is_skipped_once_the_token_was_entered() -> None:
    job = make_job(
        **{**ALL_PROMPTS, "SecurityQuestion": None, "TokenMethod": None, "TokenInput": "654321"}
    )
    assert job_status(job).prompt == PhoneConfirmationPrompt("123456")


@pytest.mark.parametrize("sent", [False, None, "false"])
def test_rung_3_needs_token_sent_flag(sent: Any) -> None:
    job = make_job(
        **{
            **ALL_PROMPTS,
            "SecurityQuestion": None,
            "TokenMethod": None,
            "TokenSentFlag": sent,
            "TokenInputName": None,
        }
    )
    assert job_status(job).prompt == PhoneConfirmationPrompt("123456")


@pytest.mark.parametrize("verify", [None, False])
def test_rung_4_token_read_without_verify_phone_flag(verify: bool | None) -> None:
    job = make_job(
        **{
            **ALL_PROMPTS,
            "SecurityQuestion": None,
            "TokenMethod": None,
            "TokenSentFlag": False,
            "VerifyPhoneFlag": verify,
        }
    )
    status = job_status(job)
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == PhoneConfirmationPrompt("123456")


def test_rung_5_captcha_when_everything_else_is_answered() -> None:
    job = make_job(
        **{
            **ALL_PROMPTS,
            "SecurityQuestion": "",
            "TokenMethod": "[]",
            "TokenSentFlag": True,
            "TokenInput": "654321",
            "TokenRead": "123456",
            "VerifyPhoneFlag": True,
        }
    )
    status = job_status(job)
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == CaptchaPrompt("iVBORw0KGgo=")


def test_no_prompt_when_no_trigger_is_set() -> None:
    job = make_job(
        SecurityQuestion=None,
        TokenMethod="",
        TokenSentFlag=False,
        TokenRead="",
        CaptchaImage=None,
        LastStep="LogInPanel",
        LastStatus="Started",
    )
    assert pending_prompt(job) is None
    status = job_status(job)
    assert status.state is JobState.RUNNING
    assert status.prompt is None
    assert not status.accounts_ready
    assert not status.done


# --- §9.5 terminal states ------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [True, "True", "true"])
def test_success_flag_true_succeeds_even_with_prompts(flag: Any) -> None:
    job = make_job(**ALL_PROMPTS, SuccessFlag=flag, LastStatus="Waiting")
    status = job_status(job)
    assert status.state is JobState.SUCCEEDED
    assert status.done
    assert status.prompt is None
    assert status.failure is None


@pytest.mark.parametrize(
    ("fields", "prompt"),
    [
        (
            {"TokenSentFlag": True, "TokenInputName": "Token", "LastStep": "TokenInput"},
            TokenInputPrompt("Token"),
        ),
        (
            {"SecurityQuestion": '["Q?"]', "LastStep": "SecurityQuestion"},
            SecurityQuestionsPrompt(("Q?",)),
        ),
        ({"TokenRead": "777", "LastStep": "TokenRead"}, PhoneConfirmationPrompt("777")),
    ],
)
def test_success_flag_false_with_pending_prompt_still_needs_input(
    fields: dict[str, Any], prompt: Any
) -> None:
    """SURE keeps showing the prompt for a false SuccessFlag while a prompt is pending."""
    status = job_status(make_job(SuccessFlag=False, LastStatus="Timeout", **fields))
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == prompt
    assert status.failure is None
    assert not status.done


@pytest.mark.parametrize(
    ("step", "last_status", "state", "reason"),
    [
        ("LogInPanel", "Completed", JobState.FAILED, FailureReason.BAD_CREDENTIALS),
        ("login", "Completed", JobState.FAILED, FailureReason.BAD_CREDENTIALS),
        ("SecurityQuestion", "Completed", JobState.FAILED, FailureReason.WRONG_ANSWER),
        ("TokenInput", "Completed", JobState.FAILED, FailureReason.WRONG_ANSWER),
        ("CaptchaImage", "Completed", JobState.FAILED, FailureReason.WRONG_ANSWER),
        ("TokenMethods", "Timeout", JobState.TIMED_OUT, FailureReason.MFA_TIMEOUT),
        ("SecurityQuestion", "Timeout", JobState.TIMED_OUT, FailureReason.MFA_TIMEOUT),
        ("TokenInput", "Timeout", JobState.TIMED_OUT, FailureReason.MFA_TIMEOUT),
        ("TokenRead", "Timeout", JobState.TIMED_OUT, FailureReason.MFA_TIMEOUT),
        ("CaptchaImage", "TIMEOUT", JobState.TIMED_OUT, FailureReason.MFA_TIMEOUT),
        ("LogInPanel", "Timeout", JobState.TIMED_OUT, FailureReason.INSTITUTION_TIMEOUT),
        ("login", "timeout", JobState.TIMED_OUT, FailureReason.INSTITUTION_TIMEOUT),
        ("LogInPanel", "Error", JobState.FAILED, FailureReason.INSTITUTION_ERROR),
        ("SecurityQuestion", "Error", JobState.FAILED, FailureReason.INSTITUTION_ERROR),
        ("TokenInput", "error", JobState.FAILED, FailureReason.INSTITUTION_ERROR),
        ("CaptchaImage", "ERROR", JobState.FAILED, FailureReason.INSTITUTION_ERROR),
        ("TransactionTable", "Error", JobState.FAILED, FailureReason.INSTITUTION_ERROR),
    ],
)
def test_success_flag_false_without_prompt(
    step: str, last_status: str, state: JobState, reason: FailureReason
) -> None:
    job = make_job(
        SuccessFlag=False,
        LastStep=step,
        LastStatus=last_status,
        AccountID=ZERO_GUID,
        JobType="AddAccounts",
    )
    assert failure_reason(job) is reason
    status = job_status(job)
    assert status.state is state
    assert status.failure is reason
    assert status.prompt is None
    assert status.done
    assert status.message


@pytest.mark.parametrize("flag", [False, "false", "False"])
def test_failed_flag_spellings(flag: Any) -> None:
    status = job_status(make_job(SuccessFlag=flag, LastStep="LogInPanel", LastStatus="Completed"))
    assert status.state is JobState.FAILED
    assert status.failure is FailureReason.BAD_CREDENTIALS


def test_failure_message_differs_per_reason() -> None:
    messages = {
        job_status(make_job(SuccessFlag=False, LastStep=step, LastStatus=last)).message
        for step, last in [
            ("LogInPanel", "Completed"),
            ("TokenInput", "Completed"),
            ("TokenInput", "Timeout"),
            ("LogInPanel", "Timeout"),
            ("LogInPanel", "Error"),
        ]
    }
    assert len(messages) == 5


@pytest.mark.parametrize("success", [None, "Processing"])
def test_accounts_ready_is_running(success: Any) -> None:
    job = make_job(SuccessFlag=success, LastStep="TransactionTable", LastStatus="AccountsReady")
    status = job_status(job)
    assert status.state is JobState.RUNNING
    assert status.accounts_ready
    assert not status.done
    assert status.prompt is None
    assert status.failure is None


# --- §9.1 SURE job payloads ----------------------------------------------------------------------

SURE_BASE = {"AccountID": ZERO_GUID, "JobType": "AddAccounts", "JobID": "job-1"}


def test_sure_login_timeout_is_timed_out() -> None:
    job = Job.model_validate(
        {**SURE_BASE, "SuccessFlag": False, "LastStep": "LogInPanel", "LastStatus": "Timeout"}
    )
    status = job_status(job)
    assert status.state is JobState.TIMED_OUT
    assert status.failure is FailureReason.INSTITUTION_TIMEOUT
    assert status.done
    assert job.selected_account_id is None


def test_sure_timeout_with_token_still_shows_token_prompt() -> None:
    job = Job.model_validate(
        {
            **SURE_BASE,
            "SuccessFlag": False,
            "TokenSentFlag": True,
            "TokenInputName": "Token",
            "LastStep": "TokenInput",
            "LastStatus": "Timeout",
        }
    )
    status = job_status(job)
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == TokenInputPrompt("Token")
    assert not status.done


@pytest.mark.parametrize(
    "fields",
    [
        {"LastStep": "LogInPanel", "LastStatus": "Started"},
        {"TokenInput": "123456", "LastStep": "TransactionTable", "LastStatus": "Started"},
        {"TokenInput": "123456", "LastStep": "TokenInput", "LastStatus": "Completed"},
        {"LastStep": "Reset", "LastStatus": "Completed"},
    ],
    ids=["login-in-progress", "downloading", "completed-after-token", "completed-reset"],
)
def test_sure_jobs_without_success_flag_are_running(fields: dict[str, Any]) -> None:
    job = Job.model_validate({**SURE_BASE, **fields})
    assert job.success_flag is None
    status = job_status(job)
    assert status.state is JobState.RUNNING
    assert status.prompt is None
    assert status.failure is None
    assert not status.done
    assert not status.accounts_ready


def test_sure_security_question_waiting() -> None:
    job = Job.model_validate(
        {
            **SURE_BASE,
            "SecurityQuestion": '["What is your favorite color?"]',
            "SuccessFlag": None,
            "LastStatus": "Waiting",
        }
    )
    status = job_status(job)
    assert status.state is JobState.NEEDS_INPUT
    assert status.prompt == SecurityQuestionsPrompt(("What is your favorite color?",))


def sure_fixture() -> dict[str, Any]:
    path = FIXTURES / "sure" / "sophtron_test.webmock.json"
    return json.loads(path.read_text(encoding="utf-8"))


def sure_classifier_job(test_name: str) -> Job:
    (entry,) = [
        item
        for item in sure_fixture()["job_objects_used_by_classifier_tests"]
        if item["test"] == test_name
    ]
    return Job.model_validate({"JobID": "job-1", **entry["job"]})


def test_sure_classifier_fixtures_that_agree_with_the_reference() -> None:
    timeout = job_status(sure_classifier_job("classifies Sophtron timeout job as failed"))
    assert timeout.done
    assert timeout.state is JobState.TIMED_OUT
    bad_login = job_status(
        sure_classifier_job("does not classify completed job with failure flag as completed")
    )
    assert bad_login.state is JobState.FAILED
    assert bad_login.failure is FailureReason.BAD_CREDENTIALS
    submitted = job_status(
        sure_classifier_job("does not classify submitted token as requiring input")
    )
    assert submitted.prompt is None
    assert submitted.state is not JobState.NEEDS_INPUT


# --- prompts -------------------------------------------------------------------------------------


def test_security_questions_are_html_unescaped() -> None:
    """SI sample: questions carry ``&#39;`` entities."""
    job = make_job(
        SecurityQuestion=(
            '["What was the first name of your first manager?",'
            '"What is your mother&#39;s middle name","What is your cat&#39;s name"]'
        )
    )
    prompt = pending_prompt(job)
    assert isinstance(prompt, SecurityQuestionsPrompt)
    assert prompt.questions == (
        "What was the first name of your first manager?",
        "What is your mother's middle name",
        "What is your cat's name",
    )
    assert prompt.kind == "security_questions"


def test_security_questions_single_quoted_help_example() -> None:
    job = make_job(
        SecurityQuestion="['what is your favorite color?', 'what is your favorite fruit?']"
    )
    assert pending_prompt(job) == SecurityQuestionsPrompt(
        ("what is your favorite color?", "what is your favorite fruit?")
    )


def test_security_questions_entities_other_than_apostrophe() -> None:
    job = make_job(SecurityQuestion='["Your &quot;first&quot; car &amp; color?"]')
    assert pending_prompt(job) == SecurityQuestionsPrompt(('Your "first" car & color?',))


SI_TOKEN_OPTIONS = (
    ":  Email me   Mail me verification code at s*********@gmail.com",
    "Send verification code by voice call to ***-***-3800",
)


def test_token_method_options_are_verbatim_and_labels_clean() -> None:
    job = make_job(TokenMethod=json.dumps(list(SI_TOKEN_OPTIONS)))
    prompt = pending_prompt(job)
    assert isinstance(prompt, TokenMethodPrompt)
    assert prompt.options == SI_TOKEN_OPTIONS
    assert prompt.labels == (
        "Email me Mail me verification code at s*********@gmail.com",
        "Send verification code by voice call to ***-***-3800",
    )
    assert prompt.kind == "token_method"


@pytest.mark.parametrize(
    ("option", "label"),
    [
        (":  Email me   at x", "Email me at x"),
        ("Text message 1 (•••) •••-0102", "Text message 1 (•••) •••-0102"),
        ("xxx-xxx-1234", "xxx-xxx-1234"),
        ("  Call me &amp; read it  ", "Call me & read it"),
        ("Text\tme\nat 1234", "Text me at 1234"),
    ],
)
def test_token_method_label(option: str, label: str) -> None:
    prompt = TokenMethodPrompt((option,))
    assert prompt.options == (option,)
    assert prompt.labels == (label,)


@pytest.mark.parametrize("name", ["Token", "PIN", "pin", "Pin Number"])
def test_token_input_label_from_token_input_name(name: str) -> None:
    prompt = pending_prompt(make_job(TokenSentFlag=True, TokenInputName=name))
    assert prompt == TokenInputPrompt(name)
    assert prompt.kind == "token_input"


@pytest.mark.parametrize("name", [None, ""])
def test_token_input_label_has_a_default(name: str | None) -> None:
    prompt = pending_prompt(make_job(TokenSentFlag=True, TokenInputName=name))
    assert isinstance(prompt, TokenInputPrompt)
    assert isinstance(prompt.label, str)
    assert prompt.label.strip()


def test_phone_confirmation_prompt_carries_the_code() -> None:
    prompt = pending_prompt(make_job(TokenRead="123456"))
    assert prompt == PhoneConfirmationPrompt("123456")
    assert prompt.kind == "phone_confirmation"


def test_captcha_prompt_decodes_png() -> None:
    encoded = png_base64()
    prompt = pending_prompt(make_job(CaptchaImage=encoded))
    assert isinstance(prompt, CaptchaPrompt)
    assert prompt.kind == "captcha"
    assert prompt.image_base64 == encoded
    assert prompt.image_png.startswith(b"\x89PNG")
    assert prompt.image_png == png_bytes()


@pytest.mark.parametrize(
    "wrap",
    [
        lambda b64: f"data:image/png;base64,{b64}",
        lambda b64: "\n".join(b64[i : i + 16] for i in range(0, len(b64), 16)),
        lambda b64: f"  {b64[:10]} \r\n {b64[10:30]}\t{b64[30:]}\n",
        lambda b64: (
            "data:image/png;base64, " + "\n".join(b64[i : i + 8] for i in range(0, len(b64), 8))
        ),
    ],
    ids=["data-url", "newlines", "whitespace", "data-url-and-newlines"],
)
def test_captcha_image_png_tolerates_prefix_and_whitespace(wrap: Any) -> None:
    prompt = CaptchaPrompt(wrap(png_base64()))
    assert prompt.image_png.startswith(b"\x89PNG")
    assert prompt.image_png == png_bytes()
    image = Image.open(io.BytesIO(prompt.image_png))
    assert image.size == (4, 4)


def test_captcha_from_widget_mock_fixture() -> None:
    path = FIXTURES / "universal-connect-widget" / "mock.json"
    (first, *_) = json.loads(path.read_text(encoding="utf-8"))["mfaJobSequence"]
    prompt = pending_prompt(make_job(**first))
    assert isinstance(prompt, CaptchaPrompt)
    assert prompt.image_png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(prompt.image_png)) as image:
        assert image.format == "PNG"


# --- answers: choose_option and answer_prompt (§9.4) ---------------------------------------------

TOKEN_PROMPT = TokenMethodPrompt(
    (":  Email me   at x", "Text message 1 (•••) •••-0102", "xxx-xxx-1234")
)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (":  Email me   at x", ":  Email me   at x"),
        ("Email me at x", ":  Email me   at x"),
        ("0", ":  Email me   at x"),
        ("Text message 1 (•••) •••-0102", "Text message 1 (•••) •••-0102"),
        ("1", "Text message 1 (•••) •••-0102"),
        ("xxx-xxx-1234", "xxx-xxx-1234"),
        ("2", "xxx-xxx-1234"),
        (" 2 ", "xxx-xxx-1234"),
    ],
)
def test_choose_option(answer: str, expected: str) -> None:
    assert choose_option(TOKEN_PROMPT, answer) == expected


@pytest.mark.parametrize("answer", ["3", "10", "-1", "Email me", "email me at x", "", "xxx"])
def test_choose_option_rejects_unknown_answer(answer: str) -> None:
    with pytest.raises(ValueError, match="not one of"):
        choose_option(TOKEN_PROMPT, answer)


@pytest.mark.parametrize("answer", [True, ["0"]])
def test_choose_option_rejects_non_text(answer: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        choose_option(TOKEN_PROMPT, answer)


def test_answer_security_questions_in_order() -> None:
    prompt = SecurityQuestionsPrompt(("First pet?", "Favorite color?", "City?"))
    call = answer_prompt(CTX, JOB_ID, prompt, ["Rex", "blue", "Seattle"])
    assert call.method == "POST"
    assert call.path == "Job/UpdateJobSecurityAnswer"
    assert call.json is not None
    body = dict(call.json)
    assert set(body) == {"JobID", "SecurityAnswer"}
    assert body["JobID"] == JOB_ID
    assert isinstance(body["SecurityAnswer"], str)
    assert json.loads(body["SecurityAnswer"]) == ["Rex", "blue", "Seattle"]


def test_answer_single_security_question_matches_sure_fixture() -> None:
    """SURE's stub body: ``{"JobID": "job-1", "SecurityAnswer": "[\\"blue\\"]"}``."""
    (stub,) = [
        item
        for item in sure_fixture()["stubs"]
        if item["test"] == "submits security answers as JSON array string"
    ]
    prompt = SecurityQuestionsPrompt(("What is your favorite color?",))
    for answer in ("blue", ["blue"]):
        call = answer_prompt(CTX, "job-1", prompt, answer)
        assert call.path == "Job/UpdateJobSecurityAnswer"
        assert call.json is not None
        assert dict(call.json) == stub["request"]


def test_answer_security_questions_keeps_special_characters() -> None:
    prompt = SecurityQuestionsPrompt(("Q1", "Q2"))
    call = answer_prompt(CTX, JOB_ID, prompt, ['say "hi"', "naïve, really"])
    assert call.json is not None
    assert json.loads(call.json["SecurityAnswer"]) == ['say "hi"', "naïve, really"]


@pytest.mark.parametrize(
    ("questions", "answers"),
    [
        (("Q1", "Q2"), ["only one"]),
        (("Q1", "Q2"), "only one"),
        (("Q1",), ["a", "b"]),
        (("Q1", "Q2"), []),
        (("Q1", "Q2"), ["a", "b", "c"]),
    ],
)
def test_answer_security_questions_wrong_count(questions: tuple[str, ...], answers: Any) -> None:
    with pytest.raises(ValueError, match="answer"):
        answer_prompt(CTX, JOB_ID, SecurityQuestionsPrompt(questions), answers)


@pytest.mark.parametrize(
    ("answer", "choice"),
    [
        ("1", "Text message 1 (•••) •••-0102"),
        ("Email me at x", ":  Email me   at x"),
        ("xxx-xxx-1234", "xxx-xxx-1234"),
    ],
)
def test_answer_token_method(answer: str, choice: str) -> None:
    call = answer_prompt(CTX, JOB_ID, TOKEN_PROMPT, answer)
    assert call.method == "POST"
    assert call.path == "Job/UpdateJobTokenInput"
    assert call.json is not None
    assert dict(call.json) == {
        "JobID": JOB_ID,
        "TokenChoice": choice,
        "TokenInput": None,
        "VerifyPhoneFlag": None,
    }


def test_answer_token_method_rejects_unknown_choice() -> None:
    with pytest.raises(ValueError, match="not one of"):
        answer_prompt(CTX, JOB_ID, TOKEN_PROMPT, "carrier pigeon")


def test_answer_token_input() -> None:
    call = answer_prompt(CTX, JOB_ID, TokenInputPrompt("Token"), "123456")
    assert call.method == "POST"
    assert call.path == "Job/UpdateJobTokenInput"
    assert call.json is not None
    assert dict(call.json) == {
        "JobID": JOB_ID,
        "TokenChoice": None,
        "TokenInput": "123456",
        "VerifyPhoneFlag": None,
    }


@pytest.mark.parametrize("answer", [True, "true", "yes"])
def test_answer_phone_confirmation(answer: Any) -> None:
    call = answer_prompt(CTX, JOB_ID, PhoneConfirmationPrompt("123456"), answer)
    assert call.method == "POST"
    assert call.path == "Job/UpdateJobTokenInput"
    assert call.json is not None
    assert dict(call.json) == {
        "JobID": JOB_ID,
        "TokenChoice": None,
        "TokenInput": None,
        "VerifyPhoneFlag": True,
    }


@pytest.mark.parametrize("answer", [False, "no", "123456"])
def test_answer_phone_confirmation_needs_true(answer: Any) -> None:
    with pytest.raises(ValueError, match="True"):
        answer_prompt(CTX, JOB_ID, PhoneConfirmationPrompt("123456"), answer)


def test_answer_captcha_with_fallback_route() -> None:
    call = answer_prompt(CTX, JOB_ID, CaptchaPrompt(png_base64()), "AB12")
    assert call.method == "POST"
    assert call.path == "Job/UpdateJobCaptcha"
    assert call.json is not None
    assert dict(call.json) == {"JobID": JOB_ID, "CaptchaInput": "AB12"}
    fallback = call.on_not_found
    assert fallback is not None
    assert fallback.method == "POST"
    assert fallback.path == "Job/UpdateJobCaptchaInput"
    assert fallback.json is not None
    assert dict(fallback.json) == {"JobID": JOB_ID, "CaptchaInput": "AB12"}


@pytest.mark.parametrize(
    "prompt", [TokenInputPrompt("Token"), CaptchaPrompt("iVBORw0KGgo=")], ids=["token", "captcha"]
)
@pytest.mark.parametrize("answer", [True, ["a"], ["a", "b"]])
def test_text_prompts_take_one_text_answer(prompt: Any, answer: Any) -> None:
    with pytest.raises(ValueError, match="one text answer"):
        answer_prompt(CTX, JOB_ID, prompt, answer)


def test_answer_prompt_rejects_non_prompt() -> None:
    with pytest.raises(TypeError):
        answer_prompt(CTX, JOB_ID, "SecurityQuestion", "blue")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "prompt",
    [
        SecurityQuestionsPrompt(("Q",)),
        TOKEN_PROMPT,
        TokenInputPrompt("Token"),
        PhoneConfirmationPrompt("1"),
        CaptchaPrompt("x"),
    ],
    ids=lambda prompt: prompt.kind,
)
def test_answer_calls_read_update_results(prompt: Any) -> None:
    """§3: ``UpdateJob*`` answers ``0`` (taken) or ``-1`` (refused); SURE sees an empty body."""
    answer = True if isinstance(prompt, PhoneConfirmationPrompt) else "0"
    call = answer_prompt(CTX, JOB_ID, prompt, answer)
    assert call.parse(Reply(200, "0", call.route)) is None
    assert call.parse(Reply(200, "", call.route)) is None
    with pytest.raises(AnswerRejected) as caught:
        call.parse(Reply(200, "-1", call.route))
    assert caught.value.job_id == JOB_ID
