"""The Sophtron SDK: FIApiAUTH signing, typed models, sync and async clients, job/MFA helpers.

Knows nothing of sophsync's database or web app. Typical use::

    from sophsync.sophtron import Client, job_status

    with Client(user_id, access_key) as sophtron:
        bank = sophtron.get_institution_by_name("Sophtron Bank NoMFA")[0]
        tracker = sophtron.create_user_institution(bank.institution_id, "user", "password")
        status = sophtron.wait_for_job(tracker.job_id)      # SUCCEEDED or NEEDS_INPUT
        while status.prompt is not None:
            sophtron.answer_prompt(tracker.job_id, status.prompt, ask_the_user(status.prompt))
            status = sophtron.wait_for_job(tracker.job_id)
        accounts = sophtron.get_user_institution_accounts(tracker.login_id)
"""

from ._calls import Call, Reply
from .auth import sign, verify
from .client import DEFAULT_BASE_URL, AsyncClient, Client, RetryPolicy
from .errors import (
    AnswerRejected,
    APIError,
    BadRequest,
    InvalidAccessKey,
    InvalidCredentials,
    JobError,
    JobFailed,
    JobTimeout,
    MalformedResponse,
    NotFound,
    RateLimited,
    RequestError,
    ServerError,
    SophtronConnectionError,
    SophtronError,
    SophtronTimeout,
)
from .mfa import (
    CaptchaPrompt,
    FailureReason,
    JobState,
    JobStatus,
    PhoneConfirmationPrompt,
    Prompt,
    SecurityQuestionsPrompt,
    TokenInputPrompt,
    TokenMethodPrompt,
    job_status,
)
from .models import (
    Account,
    AccountKind,
    Customer,
    Institution,
    Job,
    JobTracker,
    Member,
    Transaction,
    UserInstitution,
    classify_account,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "Account",
    "AccountKind",
    "AnswerRejected",
    "AsyncClient",
    "BadRequest",
    "Call",
    "CaptchaPrompt",
    "Client",
    "Customer",
    "FailureReason",
    "Institution",
    "InvalidAccessKey",
    "InvalidCredentials",
    "Job",
    "JobError",
    "JobFailed",
    "JobState",
    "JobStatus",
    "JobTimeout",
    "JobTracker",
    "MalformedResponse",
    "Member",
    "NotFound",
    "PhoneConfirmationPrompt",
    "Prompt",
    "RateLimited",
    "Reply",
    "RequestError",
    "RetryPolicy",
    "SecurityQuestionsPrompt",
    "ServerError",
    "SophtronConnectionError",
    "SophtronError",
    "SophtronTimeout",
    "TokenInputPrompt",
    "TokenMethodPrompt",
    "Transaction",
    "UserInstitution",
    "classify_account",
    "job_status",
    "sign",
    "verify",
]
