"""The web app: the REST API under ``/api/v1`` plus health, readiness and metrics.

Built by :func:`create_app` from a :class:`~sophsync.core.app.Core`. A request is authenticated
by a personal access token (``Authorization: Bearer sps_...``) or by the signed session cookie
set by ``POST /api/v1/session``. Requests that change something with a session cookie must come
from the same site (``Sec-Fetch-Site`` or ``Origin``), which stops cross-site request forgery;
token requests carry no cookie and need no such check. Every error is JSON
``{"error": {"code", "message", "field"}}`` with a fitting status; members get 403 on
everything that changes data.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from decimal import Decimal
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic_core import to_json
from sqlalchemy import func, select, text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..core import accounts, connect, credentials, families, link, sync, tokens
from ..core.app import Core, not_in_family
from ..core.connect import ConnectionView
from ..core.families import Actor
from ..errors import BadInput, NotFound, SophsyncError
from ..jobs import Queue, create_queue, defer_sync
from ..sophtron import Institution
from ..store import current_revision, head_revision
from ..store.models import RunStatus, SyncRun
from . import pages
from . import schemas as s
from . import simplefin as simplefin_routes
from .origin import same_site
from .schemas import PathId
from .threads import DEFAULT_THREADS, checked, use_threads, waits_on_sophtron

T = TypeVar("T")


class Unauthenticated(SophsyncError):
    code = "unauthenticated"
    http_status = 401


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}}, status_code=status
    )


def _connection(view: ConnectionView) -> s.ConnectionOut:
    return s.ConnectionOut(
        id=view.id,
        institution_name=view.institution_name,
        status=view.status,
        message=view.message,
        error_code=view.error_code,
        last_success_at=view.last_success_at,
        challenge=s.ChallengeOut.of(view.prompt),
    )


def _user(who: Actor) -> s.UserOut:
    return s.UserOut(id=who.user_id, email=who.email, role=who.role, family_id=who.family_id)


def _account(view: accounts.AccountView) -> s.AccountOut:
    return s.AccountOut(
        id=view.id,
        name=view.name,
        type=view.type,
        subtype=view.subtype,
        currency=view.currency,
        balance=s.money(view.balance_minor, view.currency) or "0",
        available=s.money(view.available_minor, view.currency),
        balance_at=view.balance_at,
        linked=view.linked,
        invert_sign=view.invert_sign,
        sync_start_date=view.sync_start_date,
        last_synced_at=view.last_synced_at,
    )


def _transaction(view: accounts.TransactionView) -> dict[str, object]:
    """A transaction as the API shows it: the fields of :class:`~.schemas.TransactionOut`, in
    its order."""
    return {
        "id": view.id,
        "account_id": view.account_id,
        "provider_id": view.provider_id,
        "date": view.date,
        "posted_date": view.posted_date,
        "pending": view.pending,
        "amount": s.money(view.amount_minor, view.currency) or "0",
        "amount_minor": view.amount_minor,
        "currency": view.currency,
        "description": view.description,
        "merchant": view.merchant,
        "category": view.category,
    }


@contextmanager
def _api_names(**names: str) -> Iterator[None]:
    """Name input fields in errors as the API calls them (``after_id`` is ``cursor`` here)."""
    try:
        yield
    except BadInput as error:
        if error.field in names:
            error.field = names[error.field]
        raise


def _is_page(request: Request) -> bool:
    """True for the HTML pages (not the API, health checks or static files)."""
    path = request.url.path
    return not path.startswith(
        ("/api/", "/static/", "/healthz", "/readyz", "/metrics", "/docs", "/simplefin/")
    )


class CrossSiteGuard:
    """Refuses a cross-site request that changes something through the API.

    Pure ASGI, so that a request costs no extra task or stream on its way through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in {"GET", "HEAD", "OPTIONS"}:
            request = Request(scope)
            bearer = _bearer(request) is not None
            # SimpleFIN clients send no cookie: their claim is authorised by the token it carries.
            bridge = request.url.path.startswith("/simplefin/")
            # Pages check the same site themselves, with their CSRF token, and answer in HTML.
            if not (bearer or bridge) and not _is_page(request) and not same_site(request):
                refused = _error(403, "cross_site", "Cross-site requests are refused.")
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: What a request that says nothing of who sends it is told.
_SIGN_IN = "Log in, or send a personal access token."


def _bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None`` without one."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def actor(request: Request) -> Actor:
    """Who sends the request: a bearer token's user, or the session's."""
    core: Core = request.app.state.core
    token = _bearer(request)
    if token is not None:
        found = tokens.actor_for_token(core, token)
        if found is None:
            raise Unauthenticated("The access token is unknown or revoked.")
        return found
    user_id = request.session.get("user_id")
    if isinstance(user_id, int):
        try:
            return families.get_actor(core, user_id)
        except NotFound:
            request.session.clear()
    raise Unauthenticated(_SIGN_IN)


Who = Annotated[Actor, Depends(actor)]
QueryId = Annotated[int, Query(ge=1, le=s.MAX_ID)]


async def signed(request: Request) -> None:
    """Refuses a request that carries neither a token nor a signed-in session, before its
    parameters are read (as :func:`actor` would): what :func:`one_thread` checks first."""
    if _bearer(request) is None and "user_id" not in request.session:
        raise Unauthenticated(_SIGN_IN)


Signed = Annotated[None, Depends(signed)]


def one_thread(
    *, shared_reads: bool = False
) -> Callable[[Callable[..., T]], Callable[..., Awaitable[T]]]:
    """Serve a plain route that reads for ``who`` on one web thread, with who it is for.

    FastAPI runs a ``who: Who`` route in three goes on its threads: the :func:`actor`
    dependency, the route, then the check of its answer, and each hand-over between the event
    loop and a thread costs the process CPU of its own (docs/performance.md has the numbers).
    The wrapped route is a coroutine that runs :func:`actor` and the route in one go on the same
    pool of threads (:mod:`.threads`), so its answer is checked on the event loop. FastAPI reads
    the route's other parameters as before; ``who`` is found from the request, and a request
    with no token and no session is refused before its parameters are read, as it was.

    ``shared_reads``: the route's :meth:`~sophsync.core.app.Core.autocommit` reads run on the
    connection the user was found on (for a route that reads nothing else: a route that opens
    sessions of its own would hold two connections at once).
    """

    def wrap(route: Callable[..., T]) -> Callable[..., Awaitable[T]]:
        signature = inspect.signature(route, eval_str=True)
        if "who" not in signature.parameters or "request" in signature.parameters:
            raise TypeError(f"{route.__name__} must take who and not request")
        params = [p for name, p in signature.parameters.items() if name != "who"]
        here = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params[:0] = [
            inspect.Parameter("request", here, annotation=Request),
            inspect.Parameter("signed_in", here, annotation=Signed),
        ]

        @functools.wraps(route)
        async def run(request: Request, signed_in: None, **values: object) -> T:
            core: Core = request.app.state.core

            def work() -> T:
                with core.autocommit() if shared_reads else nullcontext():
                    return route(who=actor(request), **values)

            return await run_in_threadpool(work)

        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return run

    return wrap


def create_app(
    core: Core, *, queue: Queue | None = None, threads: int = DEFAULT_THREADS
) -> FastAPI:
    """The ASGI app. ``queue`` defaults to the configured job backend's; ``threads`` is how many
    requests' database work runs at a time (see :mod:`.threads`)."""
    checked(threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        use_threads(threads)
        yield
        close = getattr(app.state.queue, "close", None)
        if close is not None:
            close()

    app = FastAPI(
        title="sophsync",
        version=__version__,
        description="Self-hosted bank sync on the Sophtron aggregation API.",
        lifespan=lifespan,
        responses={401: {"model": s.Error}, 403: {"model": s.Error}, 422: {"model": s.Error}},
    )
    app.state.core = core
    app.state.queue = queue if queue is not None else create_queue(core)
    app.add_middleware(
        SessionMiddleware,
        secret_key=core.vault.derive("session"),
        session_cookie="sophsync_session",
        same_site="lax",
        https_only=False,
        max_age=14 * 24 * 3600,
    )

    @app.exception_handler(SophsyncError)
    async def sophsync_error(request: Request, error: SophsyncError) -> Response:
        if _is_page(request):
            return await run_in_threadpool(pages.error_page, request, error)
        return _error(error.http_status, error.code, error.message, getattr(error, "field", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        location = [
            str(part)
            for part in first.get("loc", ())
            if part not in {"body", "query", "path", "header", "cookie"}
        ]
        field = ".".join(location) or None
        message = f"{field}: {first.get('msg', 'invalid')}" if field else "The request is invalid"
        if _is_page(request):
            return await sophsync_error(request, NotFound("There is no such page."))
        return _error(422, "bad_input", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        if _is_page(request):
            failure = (
                NotFound("There is no such page.")
                if error.status_code == 404
                else SophsyncError(str(error.detail), code=code)
            )
            failure.http_status = error.status_code
            return await sophsync_error(request, failure)
        return _error(error.status_code, code, str(error.detail))

    app.add_middleware(CrossSiteGuard)

    api = "/api/v1"

    # --- health ---------------------------------------------------------------------------

    @app.get("/healthz", response_model=s.Health, tags=["health"])
    def healthz() -> s.Health:
        """The process answers."""
        return s.Health(status="ok")

    @app.get(
        "/readyz", response_model=s.Health, tags=["health"], responses={503: {"model": s.Health}}
    )
    def readyz() -> Response:
        """The database answers and its schema is current."""
        try:
            with core.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            revision, head = current_revision(core.engine), head_revision()
        except Exception as error:  # the database is down: say so, never a 500
            body = s.Health(status="unavailable", details={"database": type(error).__name__})
            return JSONResponse(body.model_dump(), status_code=503)
        ready = revision == head
        body = s.Health(
            status="ok" if ready else "migrations pending",
            details={"revision": revision, "head": head},
        )
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus metrics: syncs by status, requests spent, queue depth."""
        registry = CollectorRegistry()
        runs = Gauge("sophsync_sync_runs", "Sync runs by status", ["status"], registry=registry)
        spent = Gauge(
            "sophsync_sophtron_requests", "Sophtron requests spent by all syncs", registry=registry
        )
        depth = Gauge("sophsync_queue_depth", "Jobs waiting or running", registry=registry)
        with core.session() as session:
            for status, count in session.execute(
                select(SyncRun.status, func.count()).group_by(SyncRun.status)
            ):
                runs.labels(status=status).set(count)
            for status in RunStatus:
                runs.labels(status=status.value)
            spent.set(session.scalar(select(func.coalesce(func.sum(SyncRun.requests), 0))) or 0)
        pending = getattr(app.state.queue, "pending", None)
        depth.set(pending() if pending is not None else 0)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # --- session, setup, users, tokens ----------------------------------------------------

    @app.post(f"{api}/setup", response_model=s.UserOut, status_code=201, tags=["session"])
    def setup(body: s.SetupIn, request: Request) -> s.UserOut:
        """First run: create the family and its first admin (only while there is no user)."""
        created = families.first_run(core, body.family, body.email, body.password)
        request.session["user_id"] = created.user_id
        return _user(created)

    @app.post(f"{api}/session", response_model=s.UserOut, tags=["session"])
    def login(body: s.LoginIn, request: Request) -> s.UserOut:
        """Log in: sets the session cookie."""
        who = families.authenticate(core, body.email, body.password)
        request.session["user_id"] = who.user_id
        return _user(who)

    @app.delete(f"{api}/session", status_code=204, tags=["session"])
    def logout(request: Request) -> Response:
        """Log out."""
        request.session.clear()
        return Response(status_code=204)

    @app.get(f"{api}/me", response_model=s.UserOut, tags=["session"])
    @one_thread()
    def me(who: Actor) -> s.UserOut:
        return _user(who)

    @app.get(f"{api}/users", response_model=list[s.UserOut], tags=["users"])
    @one_thread()
    def users(who: Actor) -> list[s.UserOut]:
        """The people of your family."""
        return [_user(u) for u in families.list_users(core, who)]

    @app.post(f"{api}/users", response_model=s.UserOut, status_code=201, tags=["users"])
    def add_user(body: s.UserIn, who: Who) -> s.UserOut:
        """Add a person to your family (admins)."""
        added = families.add_user(core, who, body.email, body.password, body.role)
        return _user(added)

    @app.patch(f"{api}/users/{{user_id}}", response_model=s.UserOut, tags=["users"])
    def set_role(user_id: PathId, body: s.RoleIn, who: Who) -> s.UserOut:
        """Make a person an admin or a member (admins)."""
        changed = families.set_role(core, who, user_id, body.role)
        return _user(changed)

    @app.get(f"{api}/tokens", response_model=list[s.TokenOut], tags=["tokens"])
    @one_thread()
    def list_tokens(who: Actor) -> list[s.TokenOut]:
        return [s.TokenOut.model_validate(t) for t in tokens.list_tokens(core, who)]

    @app.post(f"{api}/tokens", response_model=s.NewTokenOut, status_code=201, tags=["tokens"])
    def new_token(body: s.TokenIn, who: Who) -> s.NewTokenOut:
        """Create a personal access token (its text is shown once)."""
        view, token = tokens.create_token(core, who, body.name)
        return s.NewTokenOut(**s.TokenOut.model_validate(view).model_dump(), token=token)

    @app.delete(f"{api}/tokens/{{token_id}}", status_code=204, tags=["tokens"])
    def revoke(token_id: PathId, who: Who) -> Response:
        tokens.revoke_token(core, who, token_id)
        return Response(status_code=204)

    # --- Sophtron credentials and institutions --------------------------------------------

    @app.get(f"{api}/credentials", response_model=s.CredentialsOut, tags=["bank sync"])
    @one_thread()
    def get_credentials(who: Actor) -> s.CredentialsOut:
        """The family's Sophtron credentials (never the Access Key)."""
        status = credentials.credentials_status(core, who)
        if status is None:
            raise NotFound("No Sophtron credentials are saved", code="no_credentials")
        return s.CredentialsOut.model_validate(status)

    @app.put(f"{api}/credentials", response_model=s.CredentialsOut, tags=["bank sync"])
    @waits_on_sophtron
    def put_credentials(body: s.CredentialsIn, who: Who) -> s.CredentialsOut:
        """Verify with Sophtron and save (admins)."""
        status = credentials.save_credentials(
            core, who, body.user_id, body.access_key, body.base_url
        )
        return s.CredentialsOut.model_validate(status)

    @app.delete(f"{api}/credentials", status_code=204, tags=["bank sync"])
    def delete_credentials(who: Who) -> Response:
        credentials.remove_credentials(core, who)
        return Response(status_code=204)

    def _found(who: Actor, q: str) -> list[Institution]:
        with _api_names(query="q"):
            return connect.search_institutions(core, who, q)

    @app.get(f"{api}/institutions", response_model=list[s.InstitutionOut], tags=["bank sync"])
    @waits_on_sophtron
    def institutions(
        who: Who, q: Annotated[s.QueryText, Query(min_length=2)]
    ) -> list[s.InstitutionOut]:
        """Search institutions by name."""
        return [
            s.InstitutionOut(
                institution_id=i.institution_id,
                name=i.institution_name,
                url=i.url,
                logo=i.logo,
                username_label=i.institution_detail.login_form_user_name
                if i.institution_detail
                else None,
                needs_password=i.institution_detail.needs_password
                if i.institution_detail
                else True,
            )
            for i in _found(who, q)
        ]

    # --- connections ------------------------------------------------------------------------

    @app.get(f"{api}/connections", response_model=list[s.ConnectionOut], tags=["connections"])
    @one_thread()
    def connections(who: Actor) -> list[s.ConnectionOut]:
        return [_connection(v) for v in connect.list_connections(core, who)]

    @app.post(
        f"{api}/connections", response_model=s.ConnectionOut, status_code=201, tags=["connections"]
    )
    @waits_on_sophtron
    def start(body: s.ConnectIn, who: Who) -> s.ConnectionOut:
        """Log in to a bank (admins); then poll the connection and answer its challenges."""
        return _connection(
            connect.start_connection(
                core,
                who,
                body.institution_id,
                body.username,
                body.password,
                body.pin,
                institution_name=body.institution_name,
            )
        )

    @app.get(
        f"{api}/connections/{{connection_id}}", response_model=s.ConnectionOut, tags=["connections"]
    )
    @one_thread()
    def get_connection(connection_id: PathId, who: Actor) -> s.ConnectionOut:
        return _connection(connect.get_connection(core, who, connection_id))

    @app.post(
        f"{api}/connections/{{connection_id}}/poll",
        response_model=s.ConnectionOut,
        tags=["connections"],
    )
    @waits_on_sophtron
    def poll(connection_id: PathId, who: Who) -> s.ConnectionOut:
        """Read the bank's progress once (admins; each poll is one Sophtron request)."""
        families.require_admin(who, "check a connection")
        connect.get_connection(core, who, connection_id)
        return _connection(connect.poll_connection(core, connection_id))

    @app.post(
        f"{api}/connections/{{connection_id}}/answer",
        response_model=s.ConnectionOut,
        tags=["connections"],
    )
    @waits_on_sophtron
    def answer(connection_id: PathId, body: s.AnswerIn, who: Who) -> s.ConnectionOut:
        """Answer the bank's pending challenge (admins)."""
        return _connection(connect.answer_challenge(core, who, connection_id, body.answer))

    @app.post(
        f"{api}/connections/{{connection_id}}/check-again",
        response_model=s.ConnectionOut,
        tags=["connections"],
    )
    @waits_on_sophtron
    def check_again(connection_id: PathId, who: Who) -> s.ConnectionOut:
        return _connection(connect.check_again(core, who, connection_id))

    @app.post(
        f"{api}/connections/{{connection_id}}/retry",
        response_model=s.ConnectionOut,
        tags=["connections"],
    )
    @waits_on_sophtron
    def retry(connection_id: PathId, who: Who) -> s.ConnectionOut:
        """Start over without the bank password (admins)."""
        return _connection(connect.retry_connection(core, who, connection_id))

    @app.put(
        f"{api}/connections/{{connection_id}}/login",
        response_model=s.ConnectionOut,
        tags=["connections"],
    )
    @waits_on_sophtron
    def update_login(connection_id: PathId, body: s.LoginUpdateIn, who: Who) -> s.ConnectionOut:
        """Send new bank credentials (admins)."""
        return _connection(
            connect.update_login(core, who, connection_id, body.username, body.password, body.pin)
        )

    @app.delete(f"{api}/connections/{{connection_id}}", status_code=204, tags=["connections"])
    @waits_on_sophtron
    def remove(connection_id: PathId, who: Who) -> Response:
        connect.remove_connection(core, who, connection_id)
        return Response(status_code=204)

    # --- accounts, links, transactions ------------------------------------------------------

    @app.get(
        f"{api}/provider-accounts", response_model=list[s.ProviderAccountOut], tags=["accounts"]
    )
    @one_thread()
    def provider_accounts(
        who: Actor, connection_id: QueryId | None = None
    ) -> list[s.ProviderAccountOut]:
        """The accounts Sophtron found, linked or not."""
        return [
            s.ProviderAccountOut(
                id=p.id,
                connection_id=p.connection_id,
                name=p.name,
                mask=p.mask,
                kind=p.kind,
                provider_type=p.provider_type,
                provider_subtype=p.provider_subtype,
                currency=p.currency,
                balance=s.money(p.balance_minor, p.currency),
                linked_account_id=p.linked_account_id,
            )
            for p in link.provider_accounts(core, who, connection_id)
        ]

    @app.post(f"{api}/links", response_model=s.AccountOut, status_code=201, tags=["accounts"])
    def new_link(body: s.LinkIn, who: Who) -> s.AccountOut:
        """Link a provider account to a new local account, or to ``account_id`` (admins)."""
        if body.account_id is not None:
            link.link_existing(
                core,
                who,
                body.provider_account_id,
                body.account_id,
                sync_start_date=body.sync_start_date,
            )
            account_id = body.account_id
        else:
            account_id = link.link_new(
                core,
                who,
                body.provider_account_id,
                name=body.name,
                type=body.type,
                subtype=body.subtype,
                sync_start_date=body.sync_start_date,
                history_days=body.history_days,
                invert_sign=body.invert_sign,
            )
        return _account(accounts.get_account(core, who, account_id))

    @app.get(f"{api}/accounts", response_model=list[s.AccountOut], tags=["accounts"])
    @one_thread()
    def list_accounts(who: Actor) -> list[s.AccountOut]:
        return [_account(a) for a in accounts.list_accounts(core, who)]

    @app.patch(f"{api}/accounts/{{account_id}}", response_model=s.AccountOut, tags=["accounts"])
    def patch_account(account_id: PathId, body: s.AccountPatch, who: Who) -> s.AccountOut:
        return _account(
            accounts.update_account(
                core,
                who,
                account_id,
                name=body.name,
                type=body.type,
                subtype=body.subtype,
                invert_sign=body.invert_sign,
                sync_start_date=body.sync_start_date,
            )
        )

    @app.post(
        f"{api}/accounts/{{account_id}}/unlink", response_model=s.AccountOut, tags=["accounts"]
    )
    def unlink(account_id: PathId, who: Who) -> s.AccountOut:
        """Stop syncing an account; its history stays (admins)."""
        link.unlink(core, who, account_id)
        return _account(accounts.get_account(core, who, account_id))

    @app.get(f"{api}/transactions", response_model=s.TransactionPage, tags=["transactions"])
    @one_thread(shared_reads=True)
    def transactions(
        who: Actor,
        account_id: QueryId | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        pending: bool | None = None,
        q: Annotated[s.QueryText | None, Query(max_length=200)] = None,
        min_amount: Annotated[Decimal | None, Query(ge=0, le=s.MAX_AMOUNT)] = None,
        max_amount: Annotated[Decimal | None, Query(ge=0, le=s.MAX_AMOUNT)] = None,
        cursor: QueryId | None = None,
        limit: Annotated[int, Query(ge=1, le=accounts.MAX_PAGE)] = 100,
    ) -> Response:
        """Transactions, newest first; follow ``next_cursor`` for more. ``q`` searches the
        description and merchant; ``min_amount`` / ``max_amount`` bound the amount's size,
        money in or out."""
        # The page is written as JSON from the rows' own types, not built as 50 to 1,000
        # models and checked again: the API is asked for it most (docs/performance.md).
        with _api_names(after_id="cursor", search="q"):
            rows = accounts.list_transactions(
                core,
                who,
                account_id=account_id,
                start=start,
                end=end,
                pending=pending,
                search=q,
                min_amount=min_amount,
                max_amount=max_amount,
                after_id=cursor,
                limit=limit,
            )
        page = {
            "items": [_transaction(r) for r in rows],
            "next_cursor": rows[-1].id if len(rows) == limit else None,
        }
        return Response(to_json(page), media_type="application/json")

    @app.delete(f"{api}/transactions/{{transaction_id}}", status_code=204, tags=["transactions"])
    def delete_transaction(transaction_id: PathId, who: Who) -> Response:
        """Delete a transaction for good: syncs never bring it back (admins)."""
        accounts.delete_transaction(core, who, transaction_id)
        return Response(status_code=204)

    # --- syncs ------------------------------------------------------------------------------

    @app.get(f"{api}/sync-runs", response_model=list[s.SyncRunOut], tags=["syncs"])
    @one_thread()
    def sync_runs(
        who: Actor, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[s.SyncRunOut]:
        return [s.SyncRunOut.model_validate(r) for r in sync.sync_runs(core, who, limit)]

    @app.post(f"{api}/sync", response_model=s.QueuedOut, status_code=202, tags=["syncs"])
    def sync_now(body: s.SyncIn, who: Who) -> s.QueuedOut:
        """Queue a sync of one connection or of all (admins); workers run it."""
        families.require_admin(who, "start a sync")
        views = connect.list_connections(core, who)
        if body.connection_id is not None:
            views = [v for v in views if v.id == body.connection_id]
            if not views:
                raise not_in_family("connection", body.connection_id)
        if not views:
            raise BadInput(
                "No institution is connected yet. Connect a bank first.", code="no_connections"
            )
        queued: list[int] = []
        waiting: list[int] = []
        for view in views:
            deferred = defer_sync(
                app.state.queue, view.id, trigger="manual", backfill_from=body.backfill_from
            )
            (queued if deferred is not None else waiting).append(view.id)
        return s.QueuedOut(queued=queued, already_queued=waiting)

    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(simplefin_routes.router)
    return app
