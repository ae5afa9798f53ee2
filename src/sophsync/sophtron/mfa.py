"""Reading a Sophtron job: is it done, did it fail, or which prompt does the bank want answered?

Sophtron reports a job as a bag of nullable fields. :func:`job_status` turns one :class:`Job` into
one :class:`JobStatus` using the precedence every Sophtron client uses:

1. ``SuccessFlag`` true: succeeded.
2. A pending MFA prompt, first match wins: ``SecurityQuestion`` (one or more questions), then
   ``TokenMethod`` (choose where to send a code), then ``TokenSentFlag`` with no ``TokenInput`` yet
   (enter the code), then ``TokenRead`` not yet confirmed (confirm by phone), then ``CaptchaImage``.
   A prompt wins even over ``SuccessFlag`` false, as a bank may flag a step while still asking.
3. ``SuccessFlag`` false: failed, with a :class:`FailureReason` inferred from ``LastStep`` /
   ``LastStatus``.
4. Otherwise the job is still running (``accounts_ready`` once ``LastStatus`` is AccountsReady).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass, field
from enum import StrEnum

from .models import Job

__all__ = [
    "CaptchaPrompt",
    "FailureReason",
    "JobState",
    "JobStatus",
    "PhoneConfirmationPrompt",
    "Prompt",
    "SecurityQuestionsPrompt",
    "TokenInputPrompt",
    "TokenMethodPrompt",
    "job_status",
]


class JobState(StrEnum):
    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class FailureReason(StrEnum):
    """Why a job failed, as far as Sophtron's fields tell."""

    BAD_CREDENTIALS = "bad_credentials"
    WRONG_ANSWER = "wrong_answer"
    MFA_TIMEOUT = "mfa_timeout"
    INSTITUTION_TIMEOUT = "institution_timeout"
    INSTITUTION_ERROR = "institution_error"
    UNKNOWN = "unknown"


FAILURE_MESSAGES: dict[FailureReason, str] = {
    FailureReason.BAD_CREDENTIALS: (
        "The bank did not accept the username or password. Check them at the bank's own website, "
        "then try again."
    ),
    FailureReason.WRONG_ANSWER: (
        "The bank did not accept the answer to its security check. Start the connection again "
        "and check the answer (or request a new code)."
    ),
    FailureReason.MFA_TIMEOUT: (
        "The bank's security check expired before it was answered. Start the connection again "
        "and answer within a few minutes."
    ),
    FailureReason.INSTITUTION_TIMEOUT: (
        "Sophtron timed out while the institution was completing login. The bank may be slow "
        "or down; try again later."
    ),
    FailureReason.INSTITUTION_ERROR: (
        "The institution reported an error. It may be down for maintenance or need attention "
        "at its own website; try again later."
    ),
    FailureReason.UNKNOWN: "The connection failed at Sophtron. Try again later.",
}

_MFA_STEPS = re.compile(
    r"security|question|token|captcha|mfa|challenge|phone|verify|pin|code", re.I
)
_LOGIN_STEPS = re.compile(r"login|log_in|loginpanel|credential|password|signin", re.I)


@dataclass(frozen=True)
class SecurityQuestionsPrompt:
    """Answer every question, in order (one answer per question)."""

    questions: tuple[str, ...]
    kind: str = field(default="security_questions", init=False)


@dataclass(frozen=True)
class TokenMethodPrompt:
    """Choose where the bank sends a one-time code. Send the chosen option back verbatim."""

    options: tuple[str, ...]
    kind: str = field(default="token_method", init=False)

    @property
    def labels(self) -> tuple[str, ...]:
        """The options cleaned up for display (HTML entities decoded, spacing collapsed)."""
        return tuple(_display(option).lstrip(": ").strip() or option for option in self.options)


@dataclass(frozen=True)
class TokenInputPrompt:
    """Enter the one-time code the bank sent. ``label`` names it (``Token``, ``PIN``...)."""

    label: str
    kind: str = field(default="token_input", init=False)


@dataclass(frozen=True)
class PhoneConfirmationPrompt:
    """The bank calls or shows ``code``; confirm once it has been entered on the phone."""

    code: str
    kind: str = field(default="phone_confirmation", init=False)


@dataclass(frozen=True)
class CaptchaPrompt:
    """Type the text shown in the captcha image."""

    image_base64: str
    kind: str = field(default="captcha", init=False)

    @property
    def image_png(self) -> bytes:
        """The captcha image as PNG bytes (characters outside base64 are dropped first)."""
        cleaned = re.sub(r"[^A-Za-z0-9+/=]", "", self.image_base64.split(",")[-1])
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return b""


Prompt = (
    SecurityQuestionsPrompt
    | TokenMethodPrompt
    | TokenInputPrompt
    | PhoneConfirmationPrompt
    | CaptchaPrompt
)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    job: Job
    prompt: Prompt | None = None
    failure: FailureReason | None = None
    accounts_ready: bool = False

    @property
    def done(self) -> bool:
        return self.state in {JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT}

    @property
    def message(self) -> str:
        """One sentence for a person about where the job stands."""
        if self.state is JobState.SUCCEEDED:
            return "Connected."
        if self.prompt is not None:
            return "The bank is asking for more information."
        if self.failure is not None:
            return FAILURE_MESSAGES[self.failure]
        return "Working with the bank..."


def _display(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _is_set(value: str | None) -> bool:
    return bool(value and value.strip())


def pending_prompt(job: Job) -> Prompt | None:
    """The MFA prompt the job waits for, if any (precedence as in the module doc)."""
    if job.security_question:
        return SecurityQuestionsPrompt(tuple(_display(q) for q in job.security_question))
    if job.token_method:
        return TokenMethodPrompt(tuple(job.token_method))
    if job.token_sent_flag and not _is_set(job.token_input):
        return TokenInputPrompt(job.token_input_name or "Code")
    if _is_set(job.token_read) and not job.verify_phone_flag:
        return PhoneConfirmationPrompt(job.token_read or "")
    if _is_set(job.captcha_image) and not _is_set(job.captcha_input):
        return CaptchaPrompt(job.captcha_image or "")
    return None


def failure_reason(job: Job) -> FailureReason:
    """Why a job with ``SuccessFlag`` false failed, from its last step and status."""
    step = job.last_step or ""
    status = (job.last_status or "").lower()
    if "timeout" in status or "timedout" in status:
        return (
            FailureReason.MFA_TIMEOUT
            if _MFA_STEPS.search(step)
            else (FailureReason.INSTITUTION_TIMEOUT)
        )
    if "error" in status:
        return FailureReason.INSTITUTION_ERROR
    if _LOGIN_STEPS.search(step):
        return FailureReason.BAD_CREDENTIALS
    if _MFA_STEPS.search(step):
        return FailureReason.WRONG_ANSWER
    return FailureReason.UNKNOWN


def job_status(job: Job) -> JobStatus:
    """Classify a job: see the module docstring for the rules."""
    if job.success_flag is True:
        return JobStatus(JobState.SUCCEEDED, job, accounts_ready=True)
    prompt = pending_prompt(job)
    if prompt is not None:
        return JobStatus(JobState.NEEDS_INPUT, job, prompt=prompt)
    if job.success_flag is False:
        reason = failure_reason(job)
        timed_out = reason in {FailureReason.MFA_TIMEOUT, FailureReason.INSTITUTION_TIMEOUT}
        state = JobState.TIMED_OUT if timed_out else JobState.FAILED
        return JobStatus(state, job, failure=reason)
    ready = (job.last_status or "").strip().lower() == "accountsready"
    return JobStatus(JobState.RUNNING, job, accounts_ready=ready)
