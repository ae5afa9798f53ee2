"""Every error the Sophtron SDK raises.

All of them derive from :class:`SophtronError`, so ``except SophtronError`` catches anything the SDK
does on purpose. The tree::

    SophtronError
    ├── InvalidAccessKey            the Access Key is not Sophtron's base64 key (a ValueError too)
    ├── RequestError                the request never got a usable HTTP answer
    │   ├── SophtronTimeout         connect / read / write / pool timeout
    │   └── SophtronConnectionError connection refused, reset or dropped mid-response
    ├── APIError                    Sophtron answered an error status (``status_code``, ``route``)
    │   ├── InvalidCredentials      401 / 403: wrong User ID or Access Key
    │   ├── NotFound                404: unknown route or id
    │   ├── BadRequest              400 and other 4xx: Sophtron rejected the request body
    │   ├── RateLimited             429 (``retry_after`` seconds when Sophtron sent Retry-After)
    │   └── ServerError             5xx
    ├── MalformedResponse           a 2xx body that is not what the route returns
    ├── AnswerRejected              an UpdateJob* call answered -1 (the job did not take the answer)
    └── JobError                    raised by the job helpers when a job ends badly
        ├── JobFailed               the job ended with SuccessFlag false (``reason`` says why)
        └── JobTimeout              the job did not finish within the caller's deadline

Messages are written for the person who has to act on them, and never contain an Access Key, a bank
password, an MFA answer or a request body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .mfa import FailureReason
    from .models import Job


class SophtronError(Exception):
    """Base class of every error the SDK raises on purpose."""

    #: True when trying the same request again later may succeed.
    retryable: bool = False


class InvalidAccessKey(SophtronError, ValueError):
    """The Access Key cannot be used to sign requests."""


class RequestError(SophtronError):
    """No usable HTTP answer arrived (network trouble or a timeout)."""

    retryable = True

    def __init__(self, message: str, *, route: str) -> None:
        super().__init__(message)
        self.route = route


class SophtronTimeout(RequestError):
    """Sophtron did not answer within the configured timeout."""


class SophtronConnectionError(RequestError):
    """The connection to Sophtron failed or was dropped before a full answer.

    ``unsent`` is true when the connection could not even be opened, so Sophtron never saw the
    request and any call may be sent again.
    """

    def __init__(self, message: str, *, route: str, unsent: bool = False) -> None:
        super().__init__(message, route=route)
        self.unsent = unsent


class APIError(SophtronError):
    """Sophtron answered with an HTTP error status."""

    def __init__(self, message: str, *, status_code: int, route: str, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.route = route
        #: The start of the error body Sophtron sent (error bodies carry no secrets of ours).
        self.body = body[:500]


class InvalidCredentials(APIError):
    """401 or 403: Sophtron does not accept the User ID / Access Key pair."""


class NotFound(APIError):
    """404: the route or the id in the request is unknown to Sophtron."""


class BadRequest(APIError):
    """400 or another 4xx: Sophtron rejected the request."""


class RateLimited(APIError):
    """429: too many requests. ``retry_after`` is the wait Sophtron asked for, in seconds."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        route: str,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, route=route, body=body)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: Sophtron or the institution behind it failed."""

    retryable = True


class MalformedResponse(SophtronError):
    """A success status with a body that does not parse as what the route returns."""

    retryable = True

    def __init__(self, message: str, *, route: str) -> None:
        super().__init__(message)
        self.route = route


class AnswerRejected(SophtronError):
    """An ``UpdateJob*`` call returned -1: the job was not waiting for that answer or refused it."""

    def __init__(self, message: str, *, route: str, job_id: str) -> None:
        super().__init__(message)
        self.route = route
        self.job_id = job_id


class JobError(SophtronError):
    """A job did not end in success."""

    def __init__(self, message: str, *, job: Job | None) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(JobError):
    """The job finished with ``SuccessFlag`` false."""

    def __init__(self, message: str, *, job: Job, reason: FailureReason) -> None:
        super().__init__(message, job=job)
        self.reason = reason


class JobTimeout(JobError):
    """The job was still running when the caller's deadline passed."""

    retryable = True
