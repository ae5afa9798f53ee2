"""``Client`` and ``AsyncClient``: the Sophtron API, blocking over libcurl and async over httpx.

Both clients expose the same methods, declared once in :class:`_Routes`: each method builds a
:class:`~sophsync.sophtron._calls.Call` and the client sends it (``Client`` blocking,
``AsyncClient`` as a coroutine). Sending signs the request, maps error statuses onto
:mod:`~sophsync.sophtron.errors`, and retries what is safe to retry:

* idempotent calls (every read, even the POST ones) on 429, 5xx, timeouts, dropped connections
  and malformed bodies, with jittered exponential back-off that honours ``Retry-After``;
* any call on 429 and on a connection that could not be opened, since Sophtron then never saw
  the request. Calls that change state are never repeated after Sophtron may have acted on them.

The blocking client is the one sophsync's worker runs, hundreds of syncs at once in one
process: it sends through libcurl (pycurl, :mod:`._curl`), which does a request's work in C, a
third of the CPU that urllib3 takes and a fifth of httpx's. The async client keeps httpx, the
one mature async client that also speaks trio.

Tests point a client at the sandbox with ``base_url``; the async one also takes an httpx
``transport``.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import anyio
import httpx
import tenacity

from . import _calls as calls
from . import _curl
from .auth import decode_access_key, sign
from .errors import (
    BadRequest,
    InvalidCredentials,
    JobFailed,
    JobTimeout,
    NotFound,
    RateLimited,
    ServerError,
    SophtronConnectionError,
    SophtronError,
    SophtronTimeout,
)
from .mfa import FAILURE_MESSAGES, JobState, JobStatus, job_status

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "Client", "RetryPolicy"]

logger = logging.getLogger("sophsync.sophtron")

DEFAULT_BASE_URL = "https://api.sophtron.com/api"
#: Sophtron's refresh calls can be slow: a long read timeout, short connect and pool timeouts.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=10.0)
USER_AGENT = "sophsync (+https://github.com/sophsync/sophsync)"

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` counts the first try. Waits grow from ``backoff`` seconds, doubling up to
    ``max_backoff``, each jittered down to half. A 429's ``Retry-After`` is honoured when it is at
    most ``max_retry_after`` seconds; a longer one is raised at once so the caller can schedule.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def should_retry(self, call: calls.Call[Any], error: BaseException) -> bool:
        if isinstance(error, RateLimited):
            return error.retry_after is None or error.retry_after <= self.max_retry_after
        if isinstance(error, SophtronConnectionError) and error.unsent:
            return True
        return call.idempotent and isinstance(error, SophtronError) and error.retryable

    def wait(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait before try ``attempt + 1``."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after + random.uniform(0, self.backoff / 4)  # noqa: S311
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311


NO_RETRY = RetryPolicy(attempts=1)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Route(Generic[P, T]):
    """A client method declared once for both clients (see the module docstring)."""

    def __init__(self, build: Callable[Concatenate[Any, P], calls.Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Route[P, T]: ...
    @overload
    def __get__(self, obj: Client, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncClient, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build = self.build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return obj.send(build(obj, *args, **kwargs))

        return method


class _Routes:
    """Every Sophtron route, as methods of both clients. See ``_calls`` for their documentation."""

    user_id: str

    # v1 institutions
    health_check_auth = Route(calls.health_check_auth)
    get_institution_by_name = Route(calls.get_institution_by_name)
    get_institution_by_id = Route(calls.get_institution_by_id)
    get_institution_by_routing_number = Route(calls.get_institution_by_routing_number)
    # v1 logins
    create_user_institution = Route(calls.create_user_institution)
    retry_adding_user_institution = Route(calls.retry_adding_user_institution)
    update_user_institution = Route(calls.update_user_institution)
    delete_user_institution = Route(calls.delete_user_institution)
    refresh_user_institution = Route(calls.refresh_user_institution)
    get_user_institutions_by_user = Route(calls.get_user_institutions_by_user)
    get_user_institution_by_id = Route(calls.get_user_institution_by_id)
    get_user_institution_accounts = Route(calls.get_user_institution_accounts)
    # v1 accounts, jobs, transactions
    get_user_institution_account_by_id = Route(calls.get_user_institution_account_by_id)
    refresh_user_institution_account = Route(calls.refresh_user_institution_account)
    get_job_information_by_id = Route(calls.get_job_information_by_id)
    update_job_security_answer = Route(calls.update_job_security_answer)
    update_job_token_input = Route(calls.update_job_token_input)
    update_job_captcha = Route(calls.update_job_captcha)
    answer_prompt = Route(calls.answer_prompt)
    get_transactions_by_transaction_date = Route(calls.get_transactions_by_transaction_date)
    # v2 customers and members
    list_customers = Route(calls.list_customers)
    get_customer_by_unique_id = Route(calls.get_customer_by_unique_id)
    get_customer = Route(calls.get_customer)
    create_customer = Route(calls.create_customer)
    delete_customer = Route(calls.delete_customer)
    list_members = Route(calls.list_members)
    get_member = Route(calls.get_member)
    create_member = Route(calls.create_member)
    update_member = Route(calls.update_member)
    refresh_member = Route(calls.refresh_member)
    delete_member = Route(calls.delete_member)
    # v2 accounts, transactions, jobs
    list_customer_accounts = Route(calls.list_customer_accounts)
    list_member_accounts = Route(calls.list_member_accounts)
    get_customer_account = Route(calls.get_customer_account)
    get_customer_transactions = Route(calls.get_customer_transactions)
    get_job = Route(calls.get_job)
    answer_challenge = Route(calls.answer_challenge)


class _BaseClient(_Routes):
    """Configuration, signing and reply handling shared by both clients."""

    def __init__(
        self,
        user_id: str,
        access_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy = RetryPolicy(),
        poll_interval: float = 3.0,
        max_poll_interval: float = 10.0,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        if not user_id or not user_id.strip():
            raise ValueError("The Sophtron User ID is empty: copy it from Developer Profile.")
        self.user_id = user_id.strip()
        self._key = decode_access_key(access_key)
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        #: Called with the route before every HTTP request sent, retries included.
        self.on_request = on_request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user_id={self.user_id!r}, base_url={self.base_url!r})"

    def _request(self, call: calls.Call[Any]) -> tuple[str, str, dict[str, str], bytes | None]:
        if self.on_request is not None:
            self.on_request(call.route)
        url = f"{self.base_url}/{call.target}"
        headers = {
            "Authorization": sign(self.user_id, self._key, call.method, url),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        content = None
        if call.json is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(call.json).encode()
        return call.method, url, headers, content

    @staticmethod
    def _timed_out(call: calls.Call[Any]) -> SophtronError:
        return SophtronTimeout(
            f"Sophtron did not answer {call.route} in time. It may be busy; try again later.",
            route=call.route,
        )

    @staticmethod
    def _failed(call: calls.Call[Any], *, unsent: bool) -> SophtronError:
        """The connection failed; ``unsent`` when it could not even be opened."""
        return SophtronConnectionError(
            f"The connection to Sophtron failed during {call.route}"
            f"{' (could not connect: check the base URL and network)' if unsent else ''}. "
            "Try again later.",
            route=call.route,
            unsent=unsent,
        )

    def _reply(
        self, call: calls.Call[T], status: int, body: str, retry_after: str | None
    ) -> T | calls.Call[T]:
        """Sophtron's answer (status, body, its ``Retry-After`` header) as the call's result, the
        call to send instead, or the error it means."""
        log = logger.warning if status >= 400 else logger.debug
        log("Sophtron %s -> %s", call.route, status)
        if 200 <= status < 300:
            return call.parse(calls.Reply(status, body, call.route))
        route = call.route
        if status in (401, 403):
            raise InvalidCredentials(
                "Sophtron rejected the User ID / Access Key "
                f"({status}). Check both under Developer Profile > Direct Auth on sophtron.com; "
                "the Access Key must be the base64 key exactly as shown.",
                status_code=status,
                route=route,
                body=body,
            )
        if status == 404:
            if call.on_not_found is not None:
                return call.on_not_found
            raise NotFound(
                f"Sophtron does not know the route or the id in {route} (404).",
                status_code=status,
                route=route,
                body=body,
            )
        if status == 429:
            wait = _retry_after(retry_after)
            after = f" Sophtron asks to wait {wait:.0f} s." if wait is not None else ""
            raise RateLimited(
                f"Sophtron is limiting requests (429) for {route}.{after} The monthly request "
                "budget may be spent; syncs will resume later.",
                status_code=status,
                route=route,
                body=body,
                retry_after=wait,
            )
        if status >= 500:
            raise ServerError(
                f"Sophtron failed with {status} for {route}. This is usually temporary; try "
                "again later.",
                status_code=status,
                route=route,
                body=body,
            )
        raise BadRequest(
            f"Sophtron rejected {route} ({status}).", status_code=status, route=route, body=body
        )

    def _retrying_kwargs(self, call: calls.Call[Any]) -> dict[str, Any]:
        policy = self.retry

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return policy.wait(state.attempt_number, error)

        def log(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning(
                "Sophtron %s failed (%s), attempt %d of %d; retrying in %.1f s",
                call.route,
                type(error).__name__,
                state.attempt_number,
                policy.attempts,
                state.upcoming_sleep,
            )

        return {
            "stop": tenacity.stop_after_attempt(max(1, policy.attempts)),
            "wait": wait,
            "retry": tenacity.retry_if_exception(lambda e: policy.should_retry(call, e)),
            "before_sleep": log,
            "reraise": True,
        }

    def _next_poll(self, waited: int) -> float:
        return min(self.max_poll_interval, self.poll_interval * 1.5**waited)


def _check_outcome(status: JobStatus) -> JobStatus:
    if status.state in {JobState.FAILED, JobState.TIMED_OUT} and status.failure is not None:
        raise JobFailed(FAILURE_MESSAGES[status.failure], job=status.job, reason=status.failure)
    return status


def _deadline_passed(last: JobStatus | None, timeout: float) -> JobTimeout:
    return JobTimeout(
        f"The bank job was still running after {timeout:.0f} s. It may finish later: check it "
        "again, or start over.",
        job=last.job if last else None,
    )


_TLS_LOCK = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """One TLS context (certifi's roots) for every async client of the process (the blocking
    ones share their connections instead, :mod:`._curl`).

    Building one reads and parses the whole CA bundle, about 25 ms of CPU and a megabyte of
    memory. A context may be shared by any number of connections and threads. The lock makes
    the first callers wait for the one context instead of each building its own: loading the
    bundle lets other threads run, so without it clients opened at once built one each.
    """
    with _TLS_LOCK:
        return _build_tls_context()


@functools.cache
def _build_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _seconds(timeout: httpx.Timeout | float | None) -> tuple[float | None, float | None]:
    """A client's timeout as the blocking transport takes it: connecting, then the answer
    (``None``: no limit)."""
    if isinstance(timeout, httpx.Timeout):
        return timeout.connect, timeout.read
    return timeout, timeout


def close_idle_connections() -> None:
    """Close the kept-alive connections no blocking client is using."""
    _curl.close_idle()


class Client(_BaseClient):
    """Blocking Sophtron client. Use as a context manager or call :meth:`close`.

    Its connections are the process's (:mod:`._curl`): a client closed gives its kept-alive
    connections to the next one, and a sync does not open a connection, nor load the trusted
    roots for one, when another sync has just finished with one."""

    def __init__(
        self,
        user_id: str,
        access_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        poll_interval: float = 3.0,
        max_poll_interval: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            user_id,
            access_key,
            base_url=base_url,
            retry=retry,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_request=on_request,
        )
        self._transport = _curl.Transport(self.base_url, *_seconds(timeout))
        self._sleep = sleep
        self._closed = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Send nothing more. The client's kept-alive connections stay with the process for the
        next client to the same host (:func:`close_idle_connections` closes them)."""
        self._closed = True

    def _send_once(self, call: calls.Call[T]) -> T | calls.Call[T]:
        if self._closed:
            raise RuntimeError("This Sophtron client is closed: open a new one.")
        method, url, headers, content = self._request(call)
        try:
            response = self._transport.send(method, url, headers, content, resend=call.idempotent)
        except _curl.TransportError as error:
            if error.timed_out and not error.unsent:
                raise self._timed_out(call) from None
            raise self._failed(call, unsent=error.unsent) from None
        body = response.body.decode("utf-8", errors="replace")
        return self._reply(call, response.status, body, response.retry_after)

    def send(self, call: calls.Call[T]) -> T:
        """Send a call (retrying as the policy allows) and return its parsed result."""
        current: calls.Call[T] = call
        while True:
            result: T | calls.Call[T] | None = None
            for attempt in tenacity.Retrying(sleep=self._sleep, **self._retrying_kwargs(current)):
                with attempt:
                    result = self._send_once(current)
            if not isinstance(result, calls.Call):
                return result  # type: ignore[return-value]
            current = result

    def wait_for_job(self, job_id: str, *, timeout: float = 240.0, v2: bool = False) -> JobStatus:
        """Poll a job until it succeeds or asks for input; raise :class:`JobFailed` when it fails
        and :class:`JobTimeout` when it is still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        status: JobStatus | None = None
        polls = 0
        while True:
            job = self.get_job(job_id) if v2 else self.get_job_information_by_id(job_id)
            status = _check_outcome(job_status(job))
            if status.state in {JobState.SUCCEEDED, JobState.NEEDS_INPUT}:
                return status
            delay = self._next_poll(polls)
            if time.monotonic() + delay > deadline:
                raise _deadline_passed(status, timeout)
            self._sleep(delay)
            polls += 1


class AsyncClient(_BaseClient):
    """Asynchronous Sophtron client (asyncio or trio). Use ``async with`` or :meth:`aclose`."""

    def __init__(
        self,
        user_id: str,
        access_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
        poll_interval: float = 3.0,
        max_poll_interval: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            user_id,
            access_key,
            base_url=base_url,
            retry=retry,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_request=on_request,
        )
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, verify=tls_context())
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send_once(self, call: calls.Call[T]) -> T | calls.Call[T]:
        method, url, headers, content = self._request(call)
        try:
            response = await self._http.request(method, url, headers=headers, content=content)
        except httpx.TimeoutException:
            raise self._timed_out(call) from None
        except httpx.TransportError as error:
            raise self._failed(call, unsent=isinstance(error, httpx.ConnectError)) from None
        return self._reply(
            call, response.status_code, response.text, response.headers.get("Retry-After")
        )

    async def send(self, call: calls.Call[T]) -> T:
        """Send a call (retrying as the policy allows) and return its parsed result."""
        current: calls.Call[T] = call
        while True:
            result: T | calls.Call[T] | None = None
            retrying = tenacity.AsyncRetrying(sleep=self._sleep, **self._retrying_kwargs(current))
            async for attempt in retrying:
                with attempt:
                    result = await self._send_once(current)
            if not isinstance(result, calls.Call):
                return result  # type: ignore[return-value]
            current = result

    async def wait_for_job(
        self, job_id: str, *, timeout: float = 240.0, v2: bool = False
    ) -> JobStatus:
        """Poll a job until it succeeds or asks for input (see :meth:`Client.wait_for_job`)."""
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            job = await (self.get_job(job_id) if v2 else self.get_job_information_by_id(job_id))
            status = _check_outcome(job_status(job))
            if status.state in {JobState.SUCCEEDED, JobState.NEEDS_INPUT}:
                return status
            delay = self._next_poll(polls)
            if time.monotonic() + delay > deadline:
                raise _deadline_passed(status, timeout)
            await self._sleep(delay)
            polls += 1
