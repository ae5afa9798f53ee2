"""Sans-I/O request building and response parsing for every Sophtron route.

Each public function here builds one :class:`Call`: the method, path, JSON body and query of a
request, whether it is safe to repeat, and how to turn the reply into a model. The clients in
``client`` send calls; nothing here touches the network, so the sync and async clients share all
of it. A parser may return another :class:`Call` instead of a value when the answer needs a
follow-up request (a fallback route, or a lookup after an empty create response).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from .errors import AnswerRejected, MalformedResponse
from .mfa import (
    CaptchaPrompt,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
)
from .models import (
    Account,
    Customer,
    Institution,
    Job,
    JobTracker,
    Member,
    Transaction,
    UserInstitution,
)

T = TypeVar("T")
_COLLECTIONS = {"customers", "members", "accounts", "job"}
M = TypeVar("M", bound=BaseModel)


class ApiContext(Protocol):
    """What a call builder may know about the client: only the developer's user id."""

    @property
    def user_id(self) -> str: ...


@dataclass(frozen=True)
class Reply:
    """An HTTP reply with a success status, as the parsers see it."""

    status_code: int
    text: str
    route: str

    def json(self) -> Any:
        """The body as JSON (numbers with a fraction become ``Decimal``); ``None`` if empty."""
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text, parse_float=Decimal)
        except ValueError:
            raise MalformedResponse(
                f"Sophtron sent a body that is not JSON for {self.route}. This is usually "
                "temporary; try again.",
                route=self.route,
            ) from None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to Sophtron and how to read its reply."""

    method: str
    path: str
    parse: Callable[[Reply], T | Call[T]]
    #: The JSON body. Kept out of ``repr``: it may hold a bank password or an MFA answer.
    json: Mapping[str, Any] | None = field(default=None, repr=False)
    params: Mapping[str, str] = field(default_factory=dict)
    #: Safe to send again after a timeout or 5xx: it changes nothing at Sophtron.
    idempotent: bool = False
    #: Sent instead when Sophtron answers 404 (an alternative spelling of the route).
    on_not_found: Call[T] | None = None

    @property
    def route(self) -> str:
        """``METHOD path`` with v2 ids masked, for logs and error messages."""
        parts = self.path.split("/")
        if parts[0].lower() != "v2":
            return f"{self.method} {self.path}"
        shown = [
            "{id}" if index and parts[index - 1].lower() in _COLLECTIONS else part
            for index, part in enumerate(parts)
        ]
        return f"{self.method} {'/'.join(shown)}"

    @property
    def target(self) -> str:
        """Path and query, as appended to the base URL and signed."""
        if not self.params:
            return self.path
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.params.items())
        return f"{self.path}?{query}"


def _malformed(reply: Reply, what: str) -> MalformedResponse:
    return MalformedResponse(
        f"Sophtron's answer to {reply.route} is not {what}. This is usually temporary; try again.",
        route=reply.route,
    )


def _model(model: type[M]) -> Callable[[Reply], M]:
    def parse(reply: Reply) -> M:
        data = reply.json()
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if not isinstance(data, Mapping):
            raise _malformed(reply, f"a {model.__name__} object")
        try:
            return model.model_validate(data)
        except ValidationError:
            raise _malformed(reply, f"a valid {model.__name__}") from None

    return parse


def _models(model: type[M]) -> Callable[[Reply], list[M]]:
    def parse(reply: Reply) -> list[M]:
        data = reply.json()
        if data is None:
            return []
        if isinstance(data, Mapping):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
            raise _malformed(reply, f"a list of {model.__name__} objects")
        try:
            return [model.model_validate(item) for item in data]
        except ValidationError:
            raise _malformed(reply, f"a list of valid {model.__name__} objects") from None

    return parse


def _nothing(reply: Reply) -> None:
    return None


def _update_result(job_id: str) -> Callable[[Reply], None]:
    """``UpdateJob*`` routes answer ``0`` (taken) or ``-1`` (refused); an empty body means taken."""

    def parse(reply: Reply) -> None:
        data = reply.json()
        if data is None or data == {} or data == 0 or data == "0":
            return None
        if data in (-1, "-1"):
            raise AnswerRejected(
                "The bank's job did not take the answer: it was not waiting for it, or the choice "
                "is not one it offered. Read the job again and answer the prompt it shows now.",
                route=reply.route,
                job_id=job_id,
            )
        if isinstance(data, int | Mapping):
            return None
        raise _malformed(reply, "an update result (0 or -1)")

    return parse


def _day(value: dt.date | str) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, dt.date) else value


# --- v1: institutions -------------------------------------------------------------------------


def health_check_auth(ctx: ApiContext) -> Call[str]:
    """Check the User ID and Access Key (``GET Institution/HealthCheckAuth``).

    Returns Sophtron's text (``this is online.``); raises :class:`InvalidCredentials` on 401/403.
    """

    def parse(reply: Reply) -> str:
        text = reply.text.strip()
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text

    return Call("GET", "Institution/HealthCheckAuth", parse, idempotent=True)


def get_institution_by_name(
    ctx: ApiContext,
    name: str,
    *,
    extensive: bool | None = None,
    institution_type: str | None = None,
) -> Call[list[Institution]]:
    """Search institutions whose name contains ``name``."""
    body: dict[str, Any] = {"InstitutionName": name}
    if extensive is not None:
        body["Extensive"] = extensive
    if institution_type is not None:
        body["InstitutionType"] = institution_type
    return Call(
        "POST", "Institution/GetInstitutionByName", _models(Institution), body, idempotent=True
    )


def get_institution_by_id(ctx: ApiContext, institution_id: str) -> Call[Institution]:
    """One institution by its InstitutionID."""
    return Call(
        "POST",
        "Institution/GetInstitutionByID",
        _model(Institution),
        {"InstitutionID": institution_id},
        idempotent=True,
    )


def get_institution_by_routing_number(
    ctx: ApiContext, routing_number: str
) -> Call[list[Institution]]:
    """Institutions with an ABA routing number."""
    return Call(
        "POST",
        "Institution/GetInstitutionByRoutingNumber",
        _models(Institution),
        {"RoutingNumber": routing_number},
        idempotent=True,
    )


# --- v1: logins (UserInstitution) -------------------------------------------------------------

_CREATE_VARIANTS = {
    "default": "UserInstitution/CreateUserInstitution",
    "refresh": "UserInstitution/CreateUserInstitutionWithRefresh",
    "full_history": "UserInstitution/CreateUserInstitutionWithFullHistory",
}


def create_user_institution(
    ctx: ApiContext,
    institution_id: str,
    username: str,
    password: str,
    pin: str = "",
    *,
    variant: str = "default",
    company_id: str | None = None,
) -> Call[JobTracker]:
    """Start a login at a bank; returns the job to poll and the new UserInstitutionID.

    ``variant`` picks ``default`` (CreateUserInstitution), ``refresh`` (...WithRefresh: also
    downloads transactions) or ``full_history`` (...WithFullHistory: the whole history).
    """
    if variant not in _CREATE_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(_CREATE_VARIANTS)}, not {variant!r}")
    body: dict[str, Any] = {
        "UserID": ctx.user_id,
        "InstitutionID": institution_id,
        "UserName": username,
        "Password": password,
        "PIN": pin,
    }
    if company_id is not None:
        body["CompanyID"] = company_id
    return Call("POST", _CREATE_VARIANTS[variant], _model(JobTracker), body)


def retry_adding_user_institution(ctx: ApiContext, user_institution_id: str) -> Call[JobTracker]:
    """Run the login job again for a UserInstitution whose first job did not succeed."""
    return Call(
        "POST",
        "UserInstitution/RetryAddingUserInstitution",
        _model(JobTracker),
        {"UserInstitutionID": user_institution_id},
    )


def update_user_institution(
    ctx: ApiContext, user_institution_id: str, username: str, password: str, pin: str = ""
) -> Call[JobTracker | None]:
    """Store new bank credentials for a login; returns the job Sophtron starts, if any."""

    def parse(reply: Reply) -> JobTracker | None:
        data = reply.json()
        if isinstance(data, Mapping) and any(k.lower() == "jobid" for k in data):
            return _model(JobTracker)(reply)
        return None

    return Call(
        "POST",
        "UserInstitution/UpdateUserInstitution",
        parse,
        {
            "UserInstitutionID": user_institution_id,
            "UserName": username,
            "Password": password,
            "PIN": pin,
        },
    )


def delete_user_institution(ctx: ApiContext, user_institution_id: str) -> Call[None]:
    """Delete a login with its accounts and transactions at Sophtron."""
    return Call(
        "POST",
        "UserInstitution/DeleteUserInstitution",
        _nothing,
        {"UserInstitutionID": user_institution_id},
        idempotent=True,
    )


def refresh_user_institution(ctx: ApiContext, user_institution_id: str) -> Call[JobTracker]:
    """Refresh every account of a login; returns the job to poll."""
    return Call(
        "POST",
        "UserInstitution/RefreshUserInstitution",
        _model(JobTracker),
        {"UserInstitutionID": user_institution_id},
    )


def get_user_institutions_by_user(ctx: ApiContext) -> Call[list[UserInstitution]]:
    """Every login under the developer's User ID."""
    return Call(
        "POST",
        "UserInstitution/GetUserInstitutionsByUser",
        _models(UserInstitution),
        {"UserID": ctx.user_id},
        idempotent=True,
    )


def get_user_institution_by_id(ctx: ApiContext, user_institution_id: str) -> Call[UserInstitution]:
    """One login."""
    return Call(
        "POST",
        "UserInstitution/GetUserInstitutionByID",
        _model(UserInstitution),
        {"UserInstitutionID": user_institution_id},
        idempotent=True,
    )


def get_user_institution_accounts(ctx: ApiContext, user_institution_id: str) -> Call[list[Account]]:
    """The accounts Sophtron found under a login."""
    return Call(
        "POST",
        "UserInstitution/GetUserInstitutionAccounts",
        _models(Account),
        {"UserInstitutionID": user_institution_id},
        idempotent=True,
    )


# --- v1: accounts, jobs, transactions ---------------------------------------------------------


def get_user_institution_account_by_id(ctx: ApiContext, account_id: str) -> Call[Account]:
    """One account, with its current balance."""
    return Call(
        "POST",
        "UserInstitutionAccount/GetUserInstitutionAccountByID",
        _model(Account),
        {"AccountID": account_id},
        idempotent=True,
    )


def refresh_user_institution_account(ctx: ApiContext, account_id: str) -> Call[JobTracker]:
    """Ask the bank for an account's new transactions; returns the job to poll."""
    return Call(
        "POST",
        "UserInstitutionAccount/RefreshUserInstitutionAccount",
        _model(JobTracker),
        {"AccountID": account_id},
    )


def get_job_information_by_id(ctx: ApiContext, job_id: str) -> Call[Job]:
    """Read a job: progress, MFA prompt, or outcome."""
    return Call(
        "POST", "Job/GetJobInformationByID", _model(Job), {"JobID": job_id}, idempotent=True
    )


def update_job_security_answer(ctx: ApiContext, job_id: str, answers: Sequence[str]) -> Call[None]:
    """Answer the job's security questions: one answer per question, in order."""
    if isinstance(answers, str):
        answers = [answers]
    return Call(
        "POST",
        "Job/UpdateJobSecurityAnswer",
        _update_result(job_id),
        {"JobID": job_id, "SecurityAnswer": json.dumps(list(answers))},
    )


def update_job_token_input(
    ctx: ApiContext,
    job_id: str,
    *,
    token_choice: str | None = None,
    token_input: str | None = None,
    verify_phone_flag: bool | None = None,
) -> Call[None]:
    """Send exactly one of: the chosen token method (verbatim), the code, or phone confirmation."""
    given = [v for v in (token_choice, token_input, verify_phone_flag) if v is not None]
    if len(given) != 1:
        raise ValueError("pass exactly one of token_choice, token_input, verify_phone_flag")
    return Call(
        "POST",
        "Job/UpdateJobTokenInput",
        _update_result(job_id),
        {
            "JobID": job_id,
            "TokenChoice": token_choice,
            "TokenInput": token_input,
            "VerifyPhoneFlag": verify_phone_flag,
        },
    )


def update_job_captcha(ctx: ApiContext, job_id: str, captcha_input: str) -> Call[None]:
    """Send the captcha text (``Job/UpdateJobCaptcha``; ``...CaptchaInput`` when that is a 404)."""
    body = {"JobID": job_id, "CaptchaInput": captcha_input}
    fallback: Call[None] = Call("POST", "Job/UpdateJobCaptchaInput", _update_result(job_id), body)
    return Call("POST", "Job/UpdateJobCaptcha", _update_result(job_id), body, on_not_found=fallback)


def answer_prompt(
    ctx: ApiContext, job_id: str, prompt: Prompt, answer: str | Sequence[str] | bool
) -> Call[None]:
    """Answer whatever prompt :func:`~sophsync.sophtron.mfa.job_status` reported, via v1.

    Security questions take a list of answers (a single string for one question); a token
    method takes the option text or its 0-based index as a string; phone confirmation takes
    ``True``.
    """
    if isinstance(prompt, SecurityQuestionsPrompt):
        answers = [answer] if isinstance(answer, str) else list(answer)  # type: ignore[arg-type]
        if len(answers) != len(prompt.questions):
            raise ValueError(
                f"{len(prompt.questions)} security question(s) need {len(prompt.questions)} "
                f"answer(s); got {len(answers)}"
            )
        return update_job_security_answer(ctx, job_id, [str(a) for a in answers])
    if isinstance(prompt, TokenMethodPrompt):
        return update_job_token_input(ctx, job_id, token_choice=choose_option(prompt, answer))
    if isinstance(prompt, TokenInputPrompt):
        return update_job_token_input(ctx, job_id, token_input=_single(answer))
    if isinstance(prompt, PhoneConfirmationPrompt):
        if answer is not True and str(answer).strip().lower() not in {"true", "yes", "1"}:
            raise ValueError("phone confirmation takes True once the code was entered on the phone")
        return update_job_token_input(ctx, job_id, verify_phone_flag=True)
    if isinstance(prompt, CaptchaPrompt):
        return update_job_captcha(ctx, job_id, _single(answer))
    raise TypeError(f"not a prompt: {prompt!r}")


def _single(answer: str | Sequence[str] | bool) -> str:
    if isinstance(answer, bool) or not isinstance(answer, str):
        raise ValueError("this prompt takes one text answer")
    return answer


def choose_option(prompt: TokenMethodPrompt, answer: str | Sequence[str] | bool) -> str:
    """The verbatim option for an answer given as the option, its display label, or its index."""
    text = _single(answer).strip()
    for option, label in zip(prompt.options, prompt.labels, strict=True):
        if text in (option, option.strip(), label):
            return option
    if text.isdigit() and int(text) < len(prompt.options):
        return prompt.options[int(text)]
    # The rejected text is not repeated: it may be a one-time code typed into the wrong box.
    raise ValueError(
        "The answer is not one of the offered methods; choose one of: "
        + "; ".join(f"[{index}] {label}" for index, label in enumerate(prompt.labels))
    )


def get_transactions_by_transaction_date(
    ctx: ApiContext, account_id: str, start: dt.date | str, end: dt.date | str
) -> Call[list[Transaction]]:
    """An account's transactions dated from ``start`` to ``end`` (both included)."""
    return Call(
        "POST",
        "Transaction/GetTransactionsByTransactionDate",
        _models(Transaction),
        {"AccountID": account_id, "StartDate": _day(start), "EndDate": _day(end)},
        idempotent=True,
    )


# --- v2: customers ----------------------------------------------------------------------------


def list_customers(ctx: ApiContext) -> Call[list[Customer]]:
    """Every customer under the developer account."""
    return Call("GET", "v2/customers", _models(Customer), idempotent=True)


def get_customer_by_unique_id(ctx: ApiContext, unique_id: str) -> Call[Customer | None]:
    """The customer created with ``unique_id``, or ``None``."""

    def parse(reply: Reply) -> Customer | None:
        found = _models(Customer)(reply)
        return found[0] if found else None

    return Call("GET", "v2/customers", parse, params={"uniqueID": unique_id}, idempotent=True)


def get_customer(ctx: ApiContext, customer_id: str) -> Call[Customer]:
    """One customer."""
    return Call("GET", f"v2/customers/{customer_id}", _model(Customer), idempotent=True)


def create_customer(
    ctx: ApiContext, unique_id: str, name: str, source: str = "sophsync"
) -> Call[Customer]:
    """Create a customer. When Sophtron answers with an empty body, it is looked up by unique id."""
    lookup = get_customer_by_unique_id(ctx, unique_id)

    def found(reply: Reply) -> Customer:
        customer = lookup.parse(reply)
        if not isinstance(customer, Customer):
            raise _malformed(reply, f"a customer with unique id {unique_id!r}")
        return customer

    def parse(reply: Reply) -> Customer | Call[Customer]:
        if reply.json() is None:
            return Call(lookup.method, lookup.path, found, params=lookup.params, idempotent=True)
        return _model(Customer)(reply)

    return Call(
        "POST", "v2/customers", parse, {"UniqueID": unique_id, "Name": name, "Source": source}
    )


def delete_customer(ctx: ApiContext, customer_id: str) -> Call[None]:
    """Delete a customer with its members."""
    return Call("DELETE", f"v2/customers/{customer_id}", _nothing, idempotent=True)


# --- v2: members ------------------------------------------------------------------------------

DEFAULT_JOB_TYPES = ("aggregate",)


def _job_types(job_types: Sequence[str] | str) -> str:
    joined = job_types if isinstance(job_types, str) else "|".join(job_types)
    if not joined:
        raise ValueError("name at least one job type, such as 'aggregate'")
    return quote(joined, safe="")


def list_members(ctx: ApiContext, customer_id: str) -> Call[list[Member]]:
    """Every member (bank login) of a customer."""
    return Call("GET", f"v2/customers/{customer_id}/members", _models(Member), idempotent=True)


def get_member(ctx: ApiContext, customer_id: str, member_id: str) -> Call[Member]:
    """One member."""
    return Call(
        "GET", f"v2/customers/{customer_id}/members/{member_id}", _model(Member), idempotent=True
    )


def create_member(
    ctx: ApiContext,
    customer_id: str,
    institution_id: str,
    username: str,
    password: str,
    job_types: Sequence[str] | str = DEFAULT_JOB_TYPES,
) -> Call[JobTracker]:
    """Start a bank login under a customer; ``job_types`` such as ``aggregate``, ``history``."""
    return Call(
        "POST",
        f"v2/customers/{customer_id}/members/{_job_types(job_types)}",
        _model(JobTracker),
        {"UserName": username, "Password": password, "InstitutionID": institution_id},
    )


def update_member(
    ctx: ApiContext,
    customer_id: str,
    member_id: str,
    username: str,
    password: str,
    job_types: Sequence[str] | str = DEFAULT_JOB_TYPES,
) -> Call[JobTracker]:
    """Store new bank credentials for a member and run its job again."""
    return Call(
        "PUT",
        f"v2/customers/{customer_id}/members/{member_id}/{_job_types(job_types)}",
        _model(JobTracker),
        {"UserName": username, "Password": password},
    )


def refresh_member(
    ctx: ApiContext,
    customer_id: str,
    member_id: str,
    job_types: Sequence[str] | str = DEFAULT_JOB_TYPES,
) -> Call[JobTracker]:
    """Refresh a member's data; returns the job to poll."""
    return Call(
        "POST",
        f"v2/customers/{customer_id}/members/{member_id}/{_job_types(job_types)}",
        _model(JobTracker),
    )


def delete_member(ctx: ApiContext, customer_id: str, member_id: str) -> Call[None]:
    """Delete a member with its accounts and transactions."""
    return Call(
        "DELETE", f"v2/customers/{customer_id}/members/{member_id}", _nothing, idempotent=True
    )


# --- v2: accounts, transactions, jobs ---------------------------------------------------------


def list_customer_accounts(ctx: ApiContext, customer_id: str) -> Call[list[Account]]:
    """Every account of every member of a customer."""
    return Call("GET", f"v2/customers/{customer_id}/accounts", _models(Account), idempotent=True)


def list_member_accounts(ctx: ApiContext, customer_id: str, member_id: str) -> Call[list[Account]]:
    """The accounts of one member."""
    return Call(
        "GET",
        f"v2/customers/{customer_id}/members/{member_id}/accounts",
        _models(Account),
        idempotent=True,
    )


def get_customer_account(ctx: ApiContext, customer_id: str, account_id: str) -> Call[Account]:
    """One account of a customer."""
    return Call(
        "GET",
        f"v2/customers/{customer_id}/accounts/{account_id}",
        _model(Account),
        idempotent=True,
    )


def get_customer_transactions(
    ctx: ApiContext, customer_id: str, account_id: str, start: dt.date | str, end: dt.date | str
) -> Call[list[Transaction]]:
    """An account's transactions from ``start`` to ``end`` (both included), via v2."""
    return Call(
        "GET",
        f"v2/customers/{customer_id}/accounts/{account_id}/transactions",
        _models(Transaction),
        params={"startDate": _day(start), "endDate": _day(end)},
        idempotent=True,
    )


def get_job(ctx: ApiContext, job_id: str) -> Call[Job]:
    """Read a job via v2 (same fields as v1)."""
    return Call("GET", f"v2/job/{job_id}", _model(Job), idempotent=True)


CHALLENGE_TYPES = {
    "security_questions": "SecurityQuestion",
    "token_method": "TokenMethod",
    "token_input": "TokenInput",
    "phone_confirmation": "TokenRead",
    "captcha": "CaptchaImage",
}


def answer_challenge(
    ctx: ApiContext, job_id: str, challenge_type: str, answer: str | bool
) -> Call[None]:
    """Answer a job's challenge via v2 (``PUT v2/job/{id}/challenge/{type}``).

    ``challenge_type`` is Sophtron's name (``SecurityQuestion``, ``TokenMethod``, ``TokenInput``,
    ``TokenRead``, ``CaptchaImage``, ``single_account_select``) or a prompt kind of ``mfa``.
    For security questions pass the JSON-array string of answers.
    """
    name = CHALLENGE_TYPES.get(challenge_type, challenge_type)
    return Call("PUT", f"v2/job/{job_id}/challenge/{name}", _nothing, {"AnswerText": answer})
