"""sophsync's own error hierarchy (the SDK has its own, in ``sophtron.errors``).

Every error a person can meet derives from :class:`SophsyncError` and carries a stable ``code``
(for the REST API and scripts), an HTTP status and a CLI exit code, and a message that says what
failed and what to do. The four families drive retries:

* :class:`BadInput` (422), :class:`NotFound` (404), :class:`Conflict` (409),
  :class:`PermissionDenied` (403): the request is wrong; retrying will not help.
* :class:`NeedsUser` (409): a person must act first (answer MFA, fix credentials, reconnect).
* :class:`Retryable` (503): try again later (Sophtron busy, rate limited, a lock held).
"""

from __future__ import annotations


class SophsyncError(Exception):
    code = "error"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class BadInput(SophsyncError):
    """Input that cannot be used; ``field`` names it."""

    code = "bad_input"
    http_status = 422
    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.field = field


class NotFound(SophsyncError):
    code = "not_found"
    http_status = 404


class Conflict(SophsyncError):
    code = "conflict"
    http_status = 409


class PermissionDenied(SophsyncError):
    code = "forbidden"
    http_status = 403


class NeedsUser(SophsyncError):
    """A person must act before the work can go on."""

    code = "needs_user"
    http_status = 409
    exit_code = 3


class Retryable(SophsyncError):
    """Temporary: the same work may succeed later. ``retry_after`` in seconds when known."""

    code = "retry_later"
    http_status = 503
    exit_code = 4

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class QuotaExceeded(NeedsUser):
    """The family's monthly Sophtron request budget is spent."""

    code = "quota_exceeded"
