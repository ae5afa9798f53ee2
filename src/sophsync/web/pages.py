"""The household's pages: server-rendered HTML (Jinja2) made live with htmx.

Every page calls the same core services as the REST API. A person logs in with the session
cookie; every form carries the session's CSRF token (``csrf_token``, or the ``X-CSRF-Token``
header htmx sends), on top of the same-site check every unsafe request passes. Members see every
page; the controls that change something are absent for them, and the endpoints behind those
controls answer 403 (the core refuses them).

htmx requests (``HX-Request``) get the fragment they swap in; the same forms without JavaScript
get a redirect to the page that shows the outcome.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.templating import Jinja2Templates

from .. import __version__
from ..bridges import simplefin
from ..core import accounts, connect, credentials, families, link, quota, sync, tokens
from ..core.app import Core
from ..core.connect import ConnectionView
from ..core.families import Actor
from ..core.importer import format_money
from ..errors import BadInput, NotFound, SophsyncError
from ..jobs import Queue, defer_sync
from ..store.models import AccountType, ConnectionStatus, Role, RunStatus
from .origin import same_site
from .schemas import ChallengeOut, PathId, no_nul
from .threads import waits_on_sophtron

STATIC = Path(__file__).parent / "static"
PAGE_SIZE = 50
#: How long the connect dialog waits between two reads of the bank's progress.
POLL_MILLISECONDS = 1500


class LoginRequired(SophsyncError):
    code = "unauthenticated"
    http_status = 401


class BadCsrf(SophsyncError):
    code = "csrf"
    http_status = 403


# --- formatting -----------------------------------------------------------------------------


def format_when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def format_kind(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


def sparkline(points: list[tuple[dt.date, int]], width: int = 640, height: int = 160) -> str:
    """SVG polyline points for a balance history (oldest left, highest on top)."""
    if len(points) < 2:
        return ""
    low = min(minor for _, minor in points)
    high = max(minor for _, minor in points)
    span = (high - low) or 1
    first, last = points[0][0], points[-1][0]
    days = (last - first).days or 1
    coordinates = (
        f"{(day - first).days * width / days:.1f},"
        f"{height - 8 - (minor - low) * (height - 16) / span:.1f}"
        for day, minor in points
    )
    return " ".join(coordinates)


def _environment() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("sophsync.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = format_money
    env.filters["when"] = format_when
    env.filters["kind"] = format_kind
    env.globals["version"] = __version__
    env.globals["AccountType"] = AccountType
    env.globals["Status"] = ConnectionStatus
    env.globals["SUBTYPES"] = link.SUBTYPES
    env.globals["min_password"] = families.MIN_PASSWORD
    return Jinja2Templates(env=env)


templates = _environment()


# --- request helpers ------------------------------------------------------------------------


def _core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def _queue(request: Request) -> Queue:
    queue: Queue = request.app.state.queue
    return queue


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append({"kind": kind, "text": text})


def _session_actor(request: Request) -> Actor | None:
    user_id = request.session.get("user_id")
    if isinstance(user_id, int):
        try:
            return families.get_actor(_core(request), user_id)
        except NotFound:
            request.session.clear()
    return None


def viewer(request: Request) -> Actor:
    """The logged-in person; pages send everyone else to the login page."""
    who = _session_actor(request)
    if who is None:
        raise LoginRequired("Log in to continue.")
    return who


async def posted(request: Request) -> FormData:
    """The submitted form, once its origin and its CSRF token are checked."""
    if not same_site(request):
        raise BadCsrf("Cross-site requests are refused.", code="cross_site")
    form = await request.form()
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str):
        raise BadCsrf("This form has expired. Reload the page and try again.")
    if not hmac.compare_digest(sent, expected):
        raise BadCsrf("This form has expired. Reload the page and try again.")
    for name, value in form.multi_items():
        _no_nul(name, value)
    return form


def admin(who: Annotated[Actor, Depends(viewer)]) -> Actor:
    """The logged-in admin; members get 403 before any input is read."""
    families.require_admin(who, "do this")
    return who


Viewer = Annotated[Actor, Depends(viewer)]
Admin = Annotated[Actor, Depends(admin)]
Posted = Annotated[FormData, Depends(posted)]


def _no_nul(name: str, value: object) -> None:
    """Refuse text holding a NUL character, as the API does (:func:`.schemas.no_nul`)."""
    try:
        no_nul(value)
    except ValueError as refused:
        raise BadInput(f"{name}: {refused}", field=name) from None


def text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    _no_nul(name, value)
    return value.strip()


def optional_date(value: str, field: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{field}: enter a date like 2026-01-31", field=field) from None


def optional_amount(value: str, field: str) -> Decimal | None:
    if not value:
        return None
    try:
        amount = Decimal(value.replace(",", "").lstrip("$"))
    except InvalidOperation:
        raise BadInput(f"{field}: enter an amount like 25.00", field=field) from None
    if not amount.is_finite() or abs(amount) > 10**12:
        raise BadInput(f"{field}: enter an amount like 25.00", field=field)
    return abs(amount)


def optional_id(value: str, field: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) < 2**31:
        raise BadInput(f"{field}: choose one from the list", field=field)
    return int(value)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    who: Actor | None = None,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "who": who,
        "is_admin": who is not None and who.role is Role.ADMIN,
        "csrf": csrf_token(request),
        "flashes": request.session.pop("flash", []),
        "path": request.url.path,
    }
    values.update(context or {})
    return templates.TemplateResponse(request, template, values, status_code=status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def back_to(request: Request, fallback: str) -> str:
    """A local ``next`` address from the form or query, else ``fallback``."""
    target = request.query_params.get("next", "")
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc:
        return target
    return fallback


def error_page(request: Request, error: SophsyncError) -> Response:
    """How a page shows an error nobody caught: login for 401, else an error page."""
    if isinstance(error, LoginRequired):
        target = "/login?" + urlencode({"next": request.url.path})
        if _htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return redirect(target)
    template = "_error.html" if _htmx(request) else "error.html"
    status = error.http_status or 400
    return render(request, template, {"error": error}, status=status, who=_session_actor(request))


def _attempt(
    action: Callable[[], Response], on_error: Callable[[SophsyncError], Response]
) -> Response:
    """Run a form's action; a bad input or a refusal re-renders the form with the reason."""
    try:
        return action()
    except (LoginRequired, BadCsrf):
        raise
    except SophsyncError as error:
        if error.http_status in {401, 403, 404}:
            raise
        return on_error(error)


# --- the pages --------------------------------------------------------------------------------


def _connection_rows(core: Core, who: Actor) -> list[dict[str, Any]]:
    return [
        {
            "view": view,
            "next_sync": sync.next_sync_at(core, view.last_success_at)
            if view.status is ConnectionStatus.CONNECTED
            else None,
        }
        for view in connect.list_connections(core, who)
    ]


def _unlinked(
    core: Core, who: Actor, connection_id: int | None = None
) -> list[link.ProviderAccountView]:
    found = link.provider_accounts(core, who, connection_id)
    return [p for p in found if p.linked_account_id is None]


#: Every page (kept out of the OpenAPI description).
router = APIRouter(include_in_schema=False)


@router.get("/favicon.ico")
def favicon() -> Response:
    return redirect("/static/favicon.svg")


# --- first run, login --------------------------------------------------------------


@router.get("/setup")
def setup_page(request: Request) -> Response:
    if families.is_set_up(_core(request)):
        return redirect("/login")
    return render(request, "setup.html", {"form": {}})


@router.post("/setup")
def setup(request: Request, form: Posted) -> Response:
    core = _core(request)

    def act() -> Response:
        created = families.first_run(
            core, text(form, "family"), text(form, "email"), str(form.get("password") or "")
        )
        request.session["user_id"] = created.user_id
        flash(request, "Welcome! Next, enter your Sophtron credentials.")
        return redirect("/settings")

    return _attempt(
        act,
        lambda error: render(
            request,
            "setup.html",
            {
                "form": {"family": text(form, "family"), "email": text(form, "email")},
                "error": error,
            },
            status=error.http_status,
        ),
    )


@router.get("/login")
def login_page(request: Request) -> Response:
    if not families.is_set_up(_core(request)):
        return redirect("/setup")
    return render(request, "login.html", {"form": {}, "next": back_to(request, "/")})


@router.post("/login")
def login(request: Request, form: Posted) -> Response:
    core = _core(request)

    def act() -> Response:
        who = families.authenticate(core, text(form, "email"), str(form.get("password") or ""))
        request.session.clear()
        request.session["user_id"] = who.user_id
        return redirect(back_to(request, "/"))

    return _attempt(
        act,
        lambda error: render(
            request,
            "login.html",
            {
                "form": {"email": text(form, "email")},
                "error": error,
                "next": back_to(request, "/"),
            },
            status=error.http_status,
        ),
    )


@router.post("/logout")
def logout(request: Request, form: Posted) -> Response:
    request.session.clear()
    return redirect("/login")


# --- dashboard, accounts, transactions ---------------------------------------------


@router.get("/")
def dashboard(request: Request) -> Response:
    core = _core(request)
    if not families.is_set_up(core):
        return redirect("/setup")
    who = viewer(request)
    views = accounts.list_accounts(core, who)
    rows = _connection_rows(core, who)
    runs = sync.sync_runs(core, who, limit=5)
    syncing = any(run.status is RunStatus.RUNNING for run in runs)
    return render(
        request,
        "dashboard.html",
        {
            "accounts": views,
            "summary": accounts.summarize(views),
            "connections": rows,
            "runs": runs,
            "syncing": syncing,
            "names": {row["view"].id: row["view"].institution_name for row in rows},
            "credentials": credentials.credentials_status(core, who),
        },
        who=who,
    )


def _filters(request: Request) -> dict[str, Any]:
    query = request.query_params
    pending = query.get("pending", "")
    return {
        "q": text(query, "q")[:200],
        "start": optional_date(query.get("start", ""), "start"),
        "end": optional_date(query.get("end", ""), "end"),
        "min": optional_amount(query.get("min", ""), "min"),
        "max": optional_amount(query.get("max", ""), "max"),
        "pending": {"yes": True, "no": False}.get(pending),
        "cursor": optional_id(query.get("cursor", ""), "cursor"),
        "account": optional_id(query.get("account", ""), "account"),
    }


def _transactions(
    request: Request, who: Actor, account_id: int | None, template: str, extra: dict[str, Any]
) -> Response:
    core = _core(request)
    raw = {k: v for k, v in request.query_params.items() if k != "cursor"}
    error: SophsyncError | None = None
    rows: list[accounts.TransactionView] = []
    try:
        wanted = _filters(request)
        rows = accounts.list_transactions(
            core,
            who,
            account_id=account_id if account_id is not None else wanted["account"],
            start=wanted["start"],
            end=wanted["end"],
            pending=wanted["pending"],
            search=wanted["q"] or None,
            min_amount=wanted["min"],
            max_amount=wanted["max"],
            after_id=wanted["cursor"],
            limit=PAGE_SIZE + 1,
        )
    except BadInput as bad:
        error = bad
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    names = {a.id: a.name for a in accounts.list_accounts(core, who)}
    older = (
        f"{request.url.path}?{urlencode({**raw, 'cursor': rows[-1].id})}" if more and rows else None
    )
    newest = f"{request.url.path}?{urlencode(raw)}" if "cursor" in request.query_params else None
    context = {
        "rows": rows,
        "names": names,
        "filters": raw,
        "older": older,
        "newest": newest,
        "filter_error": error,
        **extra,
    }
    partial = _htmx(request) and request.headers.get("hx-target") == "transactions"
    return render(
        request,
        "_transactions.html" if partial else template,
        context,
        who=who,
        status=422 if error else 200,
    )


@router.get("/transactions")
def transactions_page(request: Request, who: Viewer) -> Response:
    return _transactions(
        request,
        who,
        None,
        "transactions.html",
        {"accounts": accounts.list_accounts(_core(request), who)},
    )


@router.get("/accounts/{account_id}")
def account_page(request: Request, account_id: PathId, who: Viewer) -> Response:
    core = _core(request)
    account = accounts.get_account(core, who, account_id)
    history = accounts.balance_history(
        core, who, account_id, since=core.today() - dt.timedelta(days=365)
    )
    unlinked = _unlinked(core, who)
    return _transactions(
        request,
        who,
        account_id,
        "account.html",
        {
            "account": account,
            "history": history,
            "points": sparkline(history),
            "unlinked": unlinked,
        },
    )


@router.post("/accounts/{account_id}")
def update_account(request: Request, account_id: PathId, form: Posted, who: Admin) -> Response:
    core = _core(request)

    def act() -> Response:
        kind = text(form, "type")
        accounts.update_account(
            core,
            who,
            account_id,
            name=text(form, "name"),
            type=AccountType(kind) if kind in set(AccountType) else None,
            subtype=text(form, "subtype"),
            sync_start_date=optional_date(text(form, "sync_start_date"), "sync_start_date"),
        )
        flash(request, "Saved.")
        return redirect(f"/accounts/{account_id}")

    return _attempt(act, lambda error: _form_error(request, error, f"/accounts/{account_id}"))


@router.post("/accounts/{account_id}/link")
def link_here(request: Request, account_id: PathId, form: Posted, who: Admin) -> Response:
    core = _core(request)

    def act() -> Response:
        source = optional_id(text(form, "provider_account_id"), "provider_account_id")
        if source is None:
            raise BadInput("Choose the bank account to link", field="provider_account_id")
        link.link_existing(core, who, source, account_id)
        _sync_linked(request, core, who, source)
        flash(request, "Linked. The first sync is on its way.")
        return redirect(f"/accounts/{account_id}")

    return _attempt(act, lambda error: _form_error(request, error, f"/accounts/{account_id}"))


@router.post("/accounts/{account_id}/unlink")
def unlink(request: Request, account_id: PathId, form: Posted, who: Admin) -> Response:
    link.unlink(_core(request), who, account_id)
    flash(request, "Unlinked. The account keeps its history; syncs leave it alone.")
    return redirect(f"/accounts/{account_id}")


def _form_error(request: Request, error: SophsyncError, target: str) -> Response:
    flash(request, error.message, "error")
    return redirect(target)


def _sync_linked(request: Request, core: Core, who: Actor, provider_account_id: int) -> None:
    for source in link.provider_accounts(core, who):
        if source.id == provider_account_id:
            defer_sync(_queue(request), source.connection_id, trigger="link")


# --- sync runs ----------------------------------------------------------------------


@router.get("/runs")
def runs_page(request: Request, who: Viewer) -> Response:
    core = _core(request)
    names = {v.id: v.institution_name for v in connect.list_connections(core, who)}
    return render(
        request,
        "runs.html",
        {"runs": sync.sync_runs(core, who, limit=200), "names": names},
        who=who,
    )


@router.post("/sync")
def sync_all(request: Request, form: Posted, who: Admin) -> Response:
    core = _core(request)
    queued = 0
    for view in connect.list_connections(core, who):
        if view.status is ConnectionStatus.CONNECTED:
            queued += defer_sync(_queue(request), view.id, trigger="manual") is not None
    flash(request, f"Sync queued for {queued} connection(s)." if queued else "Nothing to sync.")
    return redirect(back_to(request, "/"))


# --- connecting a bank ----------------------------------------------------------------


def _search(request: Request, who: Actor) -> dict[str, Any]:
    query = text(request.query_params, "q")[:200]
    found: list[Any] = []
    error: SophsyncError | None = None
    if len(query) >= 2:
        try:
            found = connect.search_institutions(_core(request), who, query)[:25]
        except SophsyncError as failed:
            error = failed
    return {"found": found, "query": query, "error": error}


@router.get("/connect")
@waits_on_sophtron
def connect_page(request: Request, who: Admin) -> Response:
    """Search as you type (htmx), or submit the search (without JavaScript)."""
    ready = credentials.credentials_status(_core(request), who) is not None
    return render(request, "connect.html", {"ready": ready, **_search(request, who)}, who=who)


@router.get("/connect/institutions")
@waits_on_sophtron
def institutions(request: Request, who: Admin) -> Response:
    return render(request, "_institutions.html", _search(request, who), who=who)


@router.get("/connect/login")
def login_form(request: Request, who: Admin) -> Response:
    query = request.query_params
    institution = {
        "id": query.get("institution_id", ""),
        "name": query.get("name", ""),
        "username_label": query.get("username_label") or "Username",
        "password_label": query.get("password_label") or "Password",
    }
    if not institution["id"]:
        return redirect("/connect")
    return render(request, "connect_login.html", {"institution": institution}, who=who)


@router.post("/connect")
@waits_on_sophtron
def start(request: Request, form: Posted, who: Admin) -> Response:
    core = _core(request)
    institution = {
        "id": text(form, "institution_id"),
        "name": text(form, "institution_name"),
        "username_label": text(form, "username_label") or "Username",
        "password_label": text(form, "password_label") or "Password",
    }

    def act() -> Response:
        view = connect.start_connection(
            core,
            who,
            institution["id"],
            text(form, "username"),
            str(form.get("password") or ""),
            text(form, "pin"),
            institution_name=institution["name"] or None,
        )
        return redirect(f"/connections/{view.id}/dialog")

    return _attempt(
        act,
        lambda error: render(
            request,
            "connect_login.html",
            {"institution": institution, "error": error, "username": text(form, "username")},
            status=error.http_status,
            who=who,
        ),
    )


@router.get("/connections/{connection_id}")
def connection_page(request: Request, connection_id: PathId, who: Viewer) -> Response:
    core = _core(request)
    view = connect.get_connection(core, who, connection_id)
    return render(
        request,
        "connection.html",
        {
            "view": view,
            "next_sync": sync.next_sync_at(core, view.last_success_at)
            if view.status is ConnectionStatus.CONNECTED
            else None,
            "sources": link.provider_accounts(core, who, connection_id),
            "runs": sync.sync_runs(core, who, limit=20, connection_id=connection_id),
        },
        who=who,
    )


@router.get("/connections/{connection_id}/dialog")
def dialog(request: Request, connection_id: PathId, who: Admin) -> Response:
    core = _core(request)
    view = connect.get_connection(core, who, connection_id)
    return render(request, "dialog.html", _status_context(core, who, view), who=who)


def _status_context(
    core: Core, who: Actor, view: ConnectionView, error: SophsyncError | None = None
) -> dict[str, Any]:
    sources = (
        link.provider_accounts(core, who, view.id)
        if view.status is ConnectionStatus.CONNECTED
        else []
    )
    return {
        "view": view,
        "challenge": ChallengeOut.of(view.prompt),
        "error": error,
        "poll_ms": POLL_MILLISECONDS,
        "sources": sources,
        "to_link": [p for p in sources if p.linked_account_id is None],
        "reconnected": any(p.linked_account_id is not None for p in sources),
    }


def _status(
    request: Request,
    who: Actor,
    connection_id: int,
    action: Callable[[Core], ConnectionView],
) -> Response:
    """Run a dialog action and answer with the new status (a fragment for htmx)."""
    core = _core(request)
    before = connect.get_connection(core, who, connection_id)
    error: SophsyncError | None = None
    try:
        view = action(core)
    except SophsyncError as failed:
        if failed.http_status in {401, 403, 404}:
            raise
        error, view = failed, connect.get_connection(core, who, connection_id)
    if (
        before.status is not ConnectionStatus.CONNECTED
        and view.status is ConnectionStatus.CONNECTED
        and any(p.linked_account_id for p in link.provider_accounts(core, who, view.id))
    ):
        # A reconnect finished: sync what the interrupted sync could not.
        defer_sync(_queue(request), view.id, trigger="resume")
    if not _htmx(request):
        if error is not None:
            flash(request, error.message, "error")
        return redirect(f"/connections/{connection_id}/dialog")
    return render(
        request,
        "_status.html",
        _status_context(core, who, view, error),
        status=200,
        who=who,
    )


@router.post("/connections/{connection_id}/poll")
@waits_on_sophtron
def poll(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    return _status(
        request, who, connection_id, lambda core: connect.poll_connection(core, connection_id)
    )


@router.post("/connections/{connection_id}/answer")
@waits_on_sophtron
def answer(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    kind = text(form, "kind")
    answers = [a.strip() for a in form.getlist("answer") if isinstance(a, str)]
    reply: str | list[str] | bool
    if kind == "security_questions":
        reply = answers
    elif kind == "phone_confirmation":
        reply = True
    else:
        reply = answers[0] if answers else ""

    def send(core: Core) -> ConnectionView:
        if reply == "" or reply == [] or (isinstance(reply, list) and not all(reply)):
            raise BadInput("Enter an answer", field="answer")
        return connect.answer_challenge(core, who, connection_id, reply)

    return _status(request, who, connection_id, send)


@router.post("/connections/{connection_id}/check-again")
@waits_on_sophtron
def check_again(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    return _status(
        request, who, connection_id, lambda core: connect.check_again(core, who, connection_id)
    )


@router.post("/connections/{connection_id}/retry")
@waits_on_sophtron
def retry(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    return _status(
        request,
        who,
        connection_id,
        lambda core: connect.retry_connection(core, who, connection_id),
    )


@router.post("/connections/{connection_id}/login")
@waits_on_sophtron
def new_login(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    return _status(
        request,
        who,
        connection_id,
        lambda core: connect.update_login(
            core,
            who,
            connection_id,
            text(form, "username"),
            str(form.get("password") or ""),
            text(form, "pin"),
        ),
    )


@router.post("/connections/{connection_id}/sync")
def sync_one(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    view = connect.get_connection(_core(request), who, connection_id)
    queued = defer_sync(_queue(request), view.id, trigger="manual")
    flash(
        request,
        f"Sync of {view.institution_name} queued."
        if queued is not None
        else f"A sync of {view.institution_name} is already queued.",
    )
    return redirect(back_to(request, f"/connections/{connection_id}"))


@router.post("/connections/{connection_id}/remove")
@waits_on_sophtron
def remove(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    core = _core(request)
    view = connect.get_connection(core, who, connection_id)
    connect.remove_connection(core, who, connection_id)
    flash(request, f"{view.institution_name} is removed. Its accounts keep their history.")
    return redirect("/")


# --- linking ----------------------------------------------------------------------------


@router.get("/connections/{connection_id}/link")
def link_page(request: Request, connection_id: PathId, who: Admin) -> Response:
    return _link_form(request, who, connection_id)


def _link_form(
    request: Request,
    who: Actor,
    connection_id: int,
    error: SophsyncError | None = None,
    form: FormData | None = None,
) -> Response:
    core = _core(request)
    view = connect.get_connection(core, who, connection_id)
    sources = _unlinked(core, who, connection_id)
    existing = [a for a in accounts.list_accounts(core, who) if not a.linked]
    return render(
        request,
        "link.html",
        {
            "view": view,
            "sources": sources,
            "existing": existing,
            "default_start": link.start_date(core, None, None),
            "today": core.today(),
            "error": error,
            "form": form or {},
        },
        status=error.http_status if error else 200,
        who=who,
    )


def _link_choice(
    core: Core, form: FormData, source: link.ProviderAccountView
) -> link.LinkChoice | None:
    """One account's fieldset of the link form (``None`` when it is skipped)."""
    prefix = f"a{source.id}-"
    if form.get(prefix + "link") != "on":
        return None
    try:
        start = optional_date(text(form, prefix + "start"), "sync start date")
        link.start_date(core, start, None)
    except BadInput as error:
        raise BadInput(f"{source.name}: {error.message}", field=prefix + "start") from None
    target = text(form, prefix + "target") or "new"
    if target != "new":
        account_id = optional_id(target, prefix + "target")
        return link.LinkChoice(source.id, account_id=account_id, sync_start_date=start)
    kind = text(form, prefix + "type")
    return link.LinkChoice(
        source.id,
        name=text(form, prefix + "name") or None,
        type=AccountType(kind) if kind in set(AccountType) else None,
        subtype=text(form, prefix + "subtype"),
        sync_start_date=start,
    )


@router.post("/connections/{connection_id}/link")
def link_accounts(request: Request, connection_id: PathId, form: Posted, who: Admin) -> Response:
    core = _core(request)
    connect.get_connection(core, who, connection_id)  # 404 for another family's
    sources = _unlinked(core, who, connection_id)

    def act() -> Response:
        choices = [_link_choice(core, form, source) for source in sources]
        chosen = [choice for choice in choices if choice is not None]
        link.link_many(core, who, chosen)  # all or nothing
        if chosen:
            defer_sync(_queue(request), connection_id, trigger="link")
            flash(request, f"Linked {len(chosen)} account(s). The first sync is on its way.")
        else:
            flash(request, "No account linked. You can link them later from this page.")
        return redirect("/")

    return _attempt(act, lambda error: _link_form(request, who, connection_id, error, form))


# --- settings ---------------------------------------------------------------------------


@router.get("/settings")
def settings_page(request: Request, who: Viewer) -> Response:
    return _settings(request, who)


def _settings(
    request: Request,
    who: Actor,
    *,
    error: SophsyncError | None = None,
    section: str = "",
    new_token: str | None = None,
    new_setup_token: str | None = None,
    form: Mapping[str, Any] | None = None,
) -> Response:
    core = _core(request)
    members = families.list_users(core, who)
    spent = quota.usage(core, who.family_id)
    return render(
        request,
        "settings.html",
        {
            "credentials": credentials.credentials_status(core, who),
            "spent": spent,
            "budget": core.settings.monthly_budget,
            "sync_time": core.settings.sync_time,
            "members": members,
            "tokens": tokens.list_tokens(core, who),
            "new_token": new_token,
            "simplefin": simplefin.list_accesses(core, who),
            "new_setup_token": new_setup_token,
            "error": error,
            "section": section,
            "form": form or {},
            "roles": list(Role),
        },
        status=error.http_status if error else 200,
        who=who,
    )


def _settings_action(
    request: Request, who: Actor, section: str, form: FormData, action: Callable[[], str]
) -> Response:
    def act() -> Response:
        flash(request, action())
        return redirect(f"/settings#{section}")

    kept = {k: v for k, v in form.items() if "password" not in k and k != "access_key"}
    return _attempt(
        act, lambda error: _settings(request, who, error=error, section=section, form=kept)
    )


@router.post("/settings/credentials")
@waits_on_sophtron
def save_credentials(request: Request, form: Posted, who: Admin) -> Response:
    def act() -> str:
        status = credentials.save_credentials(
            _core(request),
            who,
            text(form, "user_id") or None,
            text(form, "access_key") or None,
            text(form, "base_url") or None,
        )
        return f"Sophtron accepted the credentials (customer {status.customer_id})."

    return _settings_action(request, who, "bank-sync", form, act)


@router.post("/settings/credentials/remove")
def remove_credentials(request: Request, form: Posted, who: Admin) -> Response:
    def act() -> str:
        credentials.remove_credentials(_core(request), who)
        return "The Sophtron credentials are removed. Syncs stop until you enter them again."

    return _settings_action(request, who, "bank-sync", form, act)


@router.post("/settings/members")
def add_member(request: Request, form: Posted, who: Admin) -> Response:
    def act() -> str:
        role = text(form, "role") or Role.MEMBER.value
        if role not in set(Role):
            raise BadInput("Choose admin or member", field="role")
        added = families.add_user(
            _core(request),
            who,
            text(form, "email"),
            str(form.get("password") or ""),
            Role(role),
        )
        return f"{added.email} can now log in as {added.role.value}."

    return _settings_action(request, who, "members", form, act)


@router.post("/settings/members/{user_id}/role")
def set_role(request: Request, user_id: PathId, form: Posted, who: Admin) -> Response:
    def act() -> str:
        role = text(form, "role")
        if role not in set(Role):
            raise BadInput("Choose admin or member", field="role")
        changed = families.set_role(_core(request), who, user_id, Role(role))
        return f"{changed.email} is now {changed.role.value}."

    return _settings_action(request, who, "members", form, act)


@router.post("/settings/tokens")
def create_token(request: Request, form: Posted, who: Viewer) -> Response:
    try:
        _, token = tokens.create_token(_core(request), who, text(form, "name"))
    except BadInput as error:
        return _settings(request, who, error=error, section="tokens", form=dict(form.items()))
    return _settings(request, who, section="tokens", new_token=token)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: PathId, form: Posted, who: Viewer) -> Response:
    def act() -> str:
        tokens.revoke_token(_core(request), who, token_id)
        return "The token is revoked."

    return _settings_action(request, who, "tokens", form, act)


# --- SimpleFIN bridge -------------------------------------------------------------------------


@router.post("/settings/simplefin")
def create_setup_token(request: Request, form: Posted, who: Admin) -> Response:
    """A SimpleFIN setup token, shown once on the page that answers (never redirected to)."""
    core = _core(request)
    public = core.settings.public_url or str(request.base_url).rstrip("/")
    try:
        made = simplefin.create_setup_token(core, who, public, text(form, "label"))
    except BadInput as error:
        return _settings(request, who, error=error, section="simplefin", form=dict(form.items()))
    return _settings(request, who, section="simplefin", new_setup_token=made.token)


@router.post("/settings/simplefin/{access_id}/revoke")
def revoke_simplefin(request: Request, access_id: PathId, form: Posted, who: Admin) -> Response:
    def act() -> str:
        view = simplefin.revoke(_core(request), who, access_id)
        return f"The SimpleFIN access {view.label!r} is revoked: it reads nothing more."

    return _settings_action(request, who, "simplefin", form, act)
