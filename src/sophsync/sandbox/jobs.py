"""Sandbox jobs: the login / refresh state machine with scripted MFA.

A job walks through steps: ``LogInPanel``, then the institution's MFA challenges, then
``TransactionTable`` (accounts become visible as it starts: ``LastStatus`` AccountsReady), then
success. Each automatic step takes ``job_seconds``; an MFA step waits for its answer (at most
``mfa_timeout`` seconds, then the job fails with ``LastStatus`` Timeout) and continues
``job_seconds`` after it. The state is computed from the clock whenever the job is read, so no
background task is needed.

While waiting, exactly one trigger field is set (``SecurityQuestion``, ``TokenMethod``,
``TokenSentFlag`` + ``TokenInputName``, ``TokenRead``, ``CaptchaImage``) with ``LastStatus``
Waiting; an accepted answer clears the trigger and keeps the echo (``SecurityAnswer``,
``TokenChoice``, ``TokenInput``, ``VerifyPhoneFlag``, ``CaptchaInput``).

Failures: a bad password fails at ``LogInPanel`` (``LastStatus`` Completed); an institution
error fails there with ``LastStatus`` Error; the answer ``wrong`` to any challenge fails the job
at that step (Completed); a job of a ``never-finishes`` login stays in ``LogInPanel`` / Started.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .captcha import captcha_png, captcha_text
from .catalogue import Mfa

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
WRONG = "wrong"


class Step(StrEnum):
    LOGIN = "LogInPanel"
    SECURITY_QUESTION = "SecurityQuestion"
    TOKEN_METHOD = "TokenMethod"
    TOKEN_INPUT = "TokenInput"
    TOKEN_READ = "TokenRead"
    CAPTCHA = "CaptchaImage"
    DOWNLOAD = "TransactionTable"

    @property
    def is_challenge(self) -> bool:
        return self not in {Step.LOGIN, Step.DOWNLOAD}


ONE_QUESTION = ("What is your favorite color?",)
SEVERAL_QUESTIONS = (
    "What is your favorite color?",
    "What was the name of your first pet?",
    "What is your mother&#39;s middle name?",
)
TOKEN_METHODS = (
    "Text message 1 (•••) •••-0102",
    ":  Email me   at s*****@example.com",
    "Voice call to ***-***-3800",
)
TOKEN_INPUT_NAME = "Token"

CHALLENGES: dict[Mfa, tuple[Step, ...]] = {
    Mfa.NONE: (),
    Mfa.SECURITY_QUESTION: (Step.SECURITY_QUESTION,),
    Mfa.SECURITY_QUESTIONS: (Step.SECURITY_QUESTION,),
    Mfa.TOKEN: (Step.TOKEN_METHOD, Step.TOKEN_INPUT),
    Mfa.TOKEN_READ: (Step.TOKEN_READ,),
    Mfa.CAPTCHA: (Step.CAPTCHA,),
    Mfa.ALL: (Step.CAPTCHA, Step.SECURITY_QUESTION, Step.TOKEN_METHOD, Step.TOKEN_INPUT),
}


class Answer(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass
class SandboxJob:
    """One job. ``on_accounts`` runs when the download starts, ``on_success`` when it ends."""

    job_id: str
    job_type: str
    login_id: str
    steps: tuple[Step, ...]
    mfa: Mfa
    started_at: float
    job_seconds: float
    mfa_timeout: float
    rng: random.Random
    account_id: str = ZERO_GUID
    login_failure: str | None = None  # "password" or "institution"
    never_finishes: bool = False
    on_accounts: Callable[[], None] = lambda: None
    on_success: Callable[[], None] = lambda: None
    index: int = 0
    entered_at: float = 0.0
    answered_at: float | None = None
    wrong_answer: bool = False
    outcome: tuple[bool, str, str] | None = None  # (success, LastStep, LastStatus)
    echo: dict[str, Any] = field(default_factory=dict)
    captcha: tuple[str, str] | None = None  # (text, base64 png)
    token_read: str = ""

    def __post_init__(self) -> None:
        self.entered_at = self.started_at
        self._enter()

    @property
    def step(self) -> Step:
        return self.steps[min(self.index, len(self.steps) - 1)]

    @property
    def waiting(self) -> bool:
        return self.outcome is None and self.step.is_challenge and self.answered_at is None

    def _enter(self) -> None:
        step = self.step
        if step is Step.CAPTCHA:
            text = captcha_text(self.rng)
            self.captcha = (text, base64.b64encode(captcha_png(text, self.rng)).decode("ascii"))
        elif step is Step.TOKEN_READ:
            self.token_read = f"{self.rng.randint(0, 999999):06d}"
        elif step is Step.DOWNLOAD:
            self.on_accounts()

    def _fail(self, status: str) -> None:
        self.outcome = (False, self.step.value, status)

    def advance(self, now: float) -> None:
        """Move the job along to where it is at monotonic time ``now``."""
        while self.outcome is None:
            step = self.step
            if step.is_challenge:
                if self.answered_at is None:
                    if now - self.entered_at >= self.mfa_timeout:
                        self._fail("Timeout")
                    return
                ready_at = self.answered_at + self.job_seconds
            else:
                ready_at = self.entered_at + self.job_seconds
            if now < ready_at:
                return
            if step is Step.LOGIN and self.login_failure is not None:
                self._fail("Error" if self.login_failure == "institution" else "Completed")
                return
            if step.is_challenge and self.wrong_answer:
                self._fail("Completed")
                return
            if step is Step.LOGIN and self.never_finishes:
                return
            self.index += 1
            self.entered_at = ready_at
            self.answered_at = None
            if self.index >= len(self.steps):
                self.outcome = (True, Step.DOWNLOAD.value, "Completed")
                self.on_success()
                return
            self._enter()

    def answer(self, step: Step, value: Any, now: float) -> Answer:
        """Take an answer for ``step``; REJECTED (Sophtron's -1) when the job is not waiting for
        it or the value is not acceptable. A ``wrong`` answer is accepted, and fails the job when
        the bank checks it."""
        self.advance(now)
        if not self.waiting or self.step is not step:
            return Answer.REJECTED
        if step is Step.SECURITY_QUESTION:
            answers = _answer_list(value)
            if not answers:
                return Answer.REJECTED
            self.echo["SecurityAnswer"] = json.dumps(answers)
            wrong = any(a.strip().lower() == WRONG for a in answers)
        elif step is Step.TOKEN_METHOD:
            choice = value if isinstance(value, str) else None
            if choice is None or choice.strip() not in {m.strip() for m in TOKEN_METHODS}:
                return Answer.REJECTED
            self.echo["TokenChoice"] = choice
            wrong = False
        elif step is Step.TOKEN_READ:
            if value is not True and str(value).strip().lower() != "true":
                return Answer.REJECTED
            self.echo["VerifyPhoneFlag"] = True
            wrong = False
        else:
            text = value if isinstance(value, str) else None
            if not text or not text.strip():
                return Answer.REJECTED
            self.echo["TokenInput" if step is Step.TOKEN_INPUT else "CaptchaInput"] = text
            wrong = text.strip().lower() == WRONG
        self.wrong_answer = wrong
        self.answered_at = now
        return Answer.ACCEPTED

    def render(self, now: float) -> dict[str, Any]:
        """The job as ``GetJobInformationByID`` answers it (PascalCase, every field present)."""
        self.advance(now)
        body: dict[str, Any] = {
            "JobID": self.job_id,
            "JobType": self.job_type,
            "UserInstitutionID": self.login_id,
            "AccountID": self.account_id,
            "SuccessFlag": None,
            "LastStep": self.step.value,
            "LastStatus": "Started",
            "SecurityQuestion": None,
            "SecurityAnswer": None,
            "TokenMethod": None,
            "TokenChoice": None,
            "TokenSentFlag": None,
            "TokenInputName": None,
            "TokenInput": None,
            "TokenRead": None,
            "VerifyPhoneFlag": None,
            "CaptchaImage": None,
            "CaptchaInput": None,
        }
        body.update(self.echo)
        if self.outcome is not None:
            success, step, status = self.outcome
            body.update(SuccessFlag=success, LastStep=step, LastStatus=status)
            return body
        if self.step is Step.DOWNLOAD:
            body["LastStatus"] = "AccountsReady"
        elif self.waiting:
            body["LastStatus"] = "Waiting"
            step = self.step
            if step is Step.SECURITY_QUESTION:
                questions = (
                    SEVERAL_QUESTIONS if self.mfa is Mfa.SECURITY_QUESTIONS else ONE_QUESTION
                )
                body["SecurityQuestion"] = json.dumps(list(questions))
            elif step is Step.TOKEN_METHOD:
                body["TokenMethod"] = json.dumps(list(TOKEN_METHODS), ensure_ascii=False)
            elif step is Step.TOKEN_INPUT:
                body["TokenSentFlag"] = True
                body["TokenInputName"] = TOKEN_INPUT_NAME
            elif step is Step.TOKEN_READ:
                body["TokenRead"] = self.token_read
            elif step is Step.CAPTCHA and self.captcha is not None:
                body["CaptchaImage"] = self.captcha[1]
        return body


def _answer_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        return [value]
    if isinstance(parsed, list):
        return [str(v) for v in parsed if str(v).strip()]
    return [str(parsed)]


def plan_steps(mfa: Mfa, *, refresh: bool, ask_again: bool = False) -> tuple[Step, ...]:
    """The steps of a job at an institution with ``mfa``.

    A first connection runs the institution's challenges. A refresh runs none, unless the login
    asks again (``mfa-again``): then it runs them, or one security question where the
    institution has no MFA of its own.
    """
    if not refresh:
        challenges = CHALLENGES[mfa]
    elif ask_again:
        challenges = CHALLENGES[mfa] or (Step.SECURITY_QUESTION,)
    else:
        challenges = ()
    return (Step.LOGIN, *challenges, Step.DOWNLOAD)
