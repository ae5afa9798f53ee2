"""The sandbox's HTTP face: an ASGI app that speaks Sophtron's wire protocol.

Routing is case-insensitive, request JSON keys are matched in any case, answers are PascalCase.
Every ``/api`` request passes, in order: routing (404 / 405), FIApiAUTH (401), the rate limit
(429), fault injection, then its handler. ``/_sandbox/*`` routes are for tests and benchmarks and
need no signature.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote

import anyio
import simplejson

from ..sophtron import _parse
from ..sophtron.auth import parse_authorization, verify
from .catalogue import InstitutionKind, InstitutionRecord
from .faults import FaultInjector, RateLimiter
from .jobs import Answer, SandboxJob, Step
from .state import Customer, Login, NotFoundError, SandboxConfig, SandboxState
from .world import AccountData, TxnView, cents_to_decimal

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass
class Reply:
    status: int
    body: Any = None
    text: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        if self.text is not None:
            return self.text.encode()
        if self.body is None and self.status == 200:
            return b""
        return simplejson.dumps(self.body, use_decimal=True, ensure_ascii=False).encode()


class BadInput(Exception):
    def __init__(self, field: str, message: str | None = None) -> None:
        super().__init__(field)
        self.field = field
        self.message = message or f"The {field} field is required."


@dataclass
class Request:
    method: str
    path: str
    user_id: str
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]

    def field(self, name: str, *, required: bool = True) -> Any:
        value = self.body.get(_parse.normalise_key(name))
        if required and (value is None or (isinstance(value, str) and not value.strip())):
            raise BadInput(name)
        return value

    def text(self, name: str, *, required: bool = True) -> str:
        value = self.field(name, required=required)
        if value is None:
            return ""
        if not isinstance(value, str | int):
            raise BadInput(name, f"The {name} field must be text.")
        return str(value)

    def date(self, name: str, source: Mapping[str, Any] | None = None) -> dt.date:
        raw = (source if source is not None else self.body).get(_parse.normalise_key(name))
        if raw is None or raw == "":
            raise BadInput(name)
        try:
            parsed = _parse.parse_date(raw)
        except ValueError:
            parsed = None
        if parsed is None:
            raise BadInput(name, f"The value '{raw}' is not valid for {name}.")
        return parsed


Handler = Callable[["SandboxApp", Request], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    name: str
    handler: Handler

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.pattern, segments, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got.lower():
                return None
        return params


def _v1_date(day: dt.date | None) -> str | None:
    return f"{day.isoformat()}T00:00:00" if day else None


def _v2_date(day: dt.date | None) -> str | None:
    return f"{day.isoformat()}T00:00:00Z" if day else None


def _stamp(moment: dt.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else None


class SandboxApp:
    """The ASGI application. ``state`` is public for in-process tests."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = SandboxState(config)
        self.faults = FaultInjector(config.faults, config.seed) if config.faults else None
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self.reset_stats()

    def reset_stats(self) -> None:
        self.routes_seen: dict[str, Counter[str]] = defaultdict(Counter)
        self.statuses: Counter[str] = Counter()
        self.faults_seen: Counter[str] = Counter()
        self.users_seen: Counter[str] = Counter()

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        if path.lower().startswith("/_sandbox"):
            await self._respond(send, self._admin(scope, path, body))
            return
        await self._api(scope, path, body, send)

    async def _respond(self, send: Send, reply: Reply, *, truncate: bool = False) -> None:
        payload = reply.encode()
        content_type = (
            "text/plain; charset=utf-8"
            if reply.text is not None
            else ("application/json; charset=utf-8")
        )
        headers = [(b"content-type", content_type.encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers]
        if truncate:
            headers.append((b"content-length", str(len(payload) + 64).encode()))
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send(
                {
                    "type": "http.response.body",
                    "body": payload[: len(payload) // 2],
                    "more_body": True,
                }
            )
            return
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _count(self, route: str, status: int, user_id: str | None) -> None:
        self.routes_seen[route][str(status)] += 1
        self.statuses[str(status)] += 1
        if user_id:
            self.users_seen[user_id] += 1

    async def _api(self, scope: Scope, path: str, raw_body: bytes, send: Send) -> None:
        method: str = scope["method"].upper()
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments and segments[0].lower() == "api":
            segments = segments[1:]
        matched = [
            (route, params) for route in ROUTES if (params := route.match(segments)) is not None
        ]
        if not matched:
            self._count("unmatched", 404, None)
            await self._respond(
                send,
                Reply(
                    404,
                    {
                        "Message": f"No HTTP resource was found that matches the request URI "
                        f"'{path}'."
                    },
                ),
            )
            return
        allowed = [(route, params) for route, params in matched if route.method == method]
        if not allowed:
            self._count(matched[0][0].name, 405, None)
            await self._respond(
                send,
                Reply(
                    405,
                    {"Message": f"The requested resource does not support http method '{method}'."},
                ),
            )
            return
        route, params = allowed[0]
        user_id = self._authenticate(scope, method)
        if user_id is None:
            self._count(route.name, 401, None)
            await self._respond(
                send, Reply(401, {"Message": "Authorization has been denied for this request."})
            )
            return
        if self.limiter is not None:
            wait = self.limiter.check(user_id, time.monotonic())
            if wait is not None:
                self._count(route.name, 429, user_id)
                self.faults_seen["rate_limit"] += 1
                await self._respond(
                    send,
                    Reply(
                        429,
                        {"Message": "Rate limit exceeded."},
                        headers=(("Retry-After", f"{wait:.0f}"),),
                    ),
                )
                return
        fault = self.faults.draw() if self.faults else None
        if fault is not None:
            self.faults_seen[fault] += 1
        spec = self.config.faults
        if fault == "429" and spec is not None:
            self._count(route.name, 429, user_id)
            await self._respond(
                send,
                Reply(
                    429,
                    {"Message": "Too many requests."},
                    headers=(("Retry-After", f"{spec.retry_after:g}"),),
                ),
            )
            return
        if fault in {"500", "502", "503"}:
            status = int(fault)
            self._count(route.name, status, user_id)
            await self._respond(send, Reply(status, {"Message": "An error has occurred."}))
            return
        if fault == "slow" and spec is not None:
            await anyio.sleep(spec.slow_seconds)
        reply = self._handle(route, method, path, scope, params, raw_body, user_id)
        self._count(route.name, reply.status, user_id)
        if fault == "malformed" and reply.status < 300:
            text = reply.encode().decode()
            reply = Reply(200, text=text[: len(text) // 2] if len(text) > 2 else '{"')
        await self._respond(send, reply, truncate=fault == "drop")

    def _authenticate(self, scope: Scope, method: str) -> str | None:
        header = ""
        for key, value in scope.get("headers", ()):
            if key.lower() == b"authorization":
                header = value.decode("latin-1")
        parsed = parse_authorization(header)
        if parsed is None:
            return None
        user_id = self._known_user(parsed.user_id)
        if user_id is None:
            return None
        key = self.config.users[user_id]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"").decode("latin-1")
        ok = verify(
            header, key, method, raw_path.decode("latin-1"), query, strict=self.config.strict_auth
        )
        return user_id if ok else None

    def _known_user(self, user_id: str) -> str | None:
        """The configured spelling of a User ID (GUIDs compare in any case)."""
        if user_id in self.config.users:
            return user_id
        for known in self.config.users:
            if known.lower() == user_id.lower():
                return known
        return None

    def _handle(
        self,
        route: Route,
        method: str,
        path: str,
        scope: Scope,
        params: dict[str, str],
        raw_body: bytes,
        user_id: str,
    ) -> Reply:
        body: dict[str, Any] = {}
        if raw_body.strip():
            try:
                parsed = json.loads(raw_body, parse_float=Decimal)
            except ValueError:
                return Reply(400, {"Message": "The request body is not valid JSON."})
            if not isinstance(parsed, dict):
                return Reply(400, {"Message": "The request body must be a JSON object."})
            body = {_parse.normalise_key(str(k)): v for k, v in parsed.items()}
        query = {
            _parse.normalise_key(k): v
            for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        }
        request = Request(method, path, user_id, params, query, body)
        try:
            return route.handler(self, request)
        except BadInput as error:
            return Reply(
                400,
                {
                    "Message": "The request is invalid.",
                    "ModelState": {error.field: [error.message]},
                },
            )
        except NotFoundError as error:
            return Reply(404, {"Message": f"{error.args[0]} not found."})

    # --- admin --------------------------------------------------------------------------------

    def _admin(self, scope: Scope, path: str, raw_body: bytes) -> Reply:
        action = path.strip("/").lower().removeprefix("_sandbox").strip("/")
        method = scope["method"].upper()
        if action == "" and method == "GET":
            config = self.config
            return Reply(
                200,
                {
                    "seed": config.seed,
                    "today": self.state.today.isoformat(),
                    "job_seconds": config.job_seconds,
                    "mfa_timeout": config.mfa_timeout,
                    "faults": str(config.faults) if config.faults else None,
                    "rate_limit": str(config.rate_limit) if config.rate_limit else None,
                    "strict_auth": config.strict_auth,
                    "institutions": len(self.state.catalogue),
                },
            )
        if action == "stats" and method == "GET":
            return Reply(
                200,
                {
                    "total": sum(self.statuses.values()),
                    "statuses": dict(self.statuses),
                    "routes": {
                        name: dict(counts) for name, counts in sorted(self.routes_seen.items())
                    },
                    "faults": dict(self.faults_seen),
                    "users": dict(self.users_seen),
                },
            )
        if action == "stats" and method == "DELETE":
            self.reset_stats()
            return Reply(200, {"reset": True})
        if action == "truth" and method == "GET":
            query = dict(parse_qsl(scope.get("query_string", b"").decode()))
            return Reply(200, self.truth(query.get("user_id")))
        if action == "advance" and method == "POST":
            try:
                data = json.loads(raw_body or b"{}")
                if not isinstance(data, dict):
                    raise TypeError
                if "to" in data:
                    target = dt.date.fromisoformat(str(data["to"]))
                    days = (target - self.state.today).days
                else:
                    days = int(data.get("days", 1))
            except (ValueError, TypeError):
                return Reply(400, {"Message": 'Send {"days": N} or {"to": "YYYY-MM-DD"}.'})
            if days < 0:
                return Reply(400, {"Message": "The sandbox clock only moves forward."})
            return Reply(200, {"today": self.state.advance(days).isoformat()})
        return Reply(
            404,
            {
                "Message": "Admin routes: GET /_sandbox, GET|DELETE /_sandbox/stats, "
                "GET /_sandbox/truth, POST /_sandbox/advance."
            },
        )

    def truth(self, user_id: str | None = None) -> dict[str, Any]:
        """Every login, account and transaction (of one user, if given), as the API shows them."""
        logins = []
        for login in self.state.logins.values():
            if user_id is not None and login.user_id != user_id:
                continue
            accounts = []
            for account in self.state.visible_accounts(login):
                as_of = self.state.as_of(login, account)
                accounts.append(
                    {
                        **self.account_json(login, account, v2=False),
                        "AsOf": as_of.isoformat(),
                        "Transactions": [
                            self.transaction_json(login, account, view, v2=False)
                            for view in login.data.transactions(account, as_of)
                        ],
                    }
                )
            logins.append(
                {
                    "UserID": login.user_id,
                    "UserInstitutionID": login.login_id,
                    "CustomerID": login.customer_id,
                    "InstitutionID": login.institution.institution_id,
                    "InstitutionName": login.institution.name,
                    "UserName": login.username,
                    "Connected": login.connected,
                    "Accounts": accounts,
                }
            )
        return {"Today": self.state.today.isoformat(), "Logins": logins}

    # --- serialisers --------------------------------------------------------------------------

    def institution_json(self, record: InstitutionRecord) -> dict[str, Any]:
        routing = record.routing_numbers
        return {
            "InstitutionID": record.institution_id,
            "InstitutionName": record.name,
            "URL": record.url,
            "Logo": record.logo,
            "CountryCode": record.country_code,
            "LanguageCode": "en",
            "IsFinancial": record.kind is not InstitutionKind.UTILITY,
            "InstitutionDetail": {
                "LoginFormUserName": record.login_form_user_name,
                "LoginFormPassword": record.login_form_password,
                "RoutingNumber": routing[0] if routing else "",
                "MultipleRoutingNumbers": "/".join(routing[1:]),
                "LoginFormFields": [
                    {"MappedField": "UserName", "DisplayText": record.login_form_user_name},
                    {"MappedField": "Password", "DisplayText": record.login_form_password},
                ],
            },
        }

    def login_json(self, login: Login) -> dict[str, Any]:
        return {
            "UserID": login.user_id,
            "InstitutionID": login.institution.institution_id,
            "InstitutionName": login.institution.name,
            "UserInstitutionID": login.login_id,
            "UserName": login.username,
            "CompanyID": None,
            "OwnerName": "Sandbox Account Holder",
            "Address": "1 Main Street, Springfield, IL 62701",
            "Phone": json.dumps(["Primary: 425-000-1234"]),
            "Email": json.dumps(["Home: holder@example.com"]),
            "LastModified": _stamp(login.last_modified),
        }

    def account_json(self, login: Login, account: AccountData, *, v2: bool) -> dict[str, Any]:
        as_of = self.state.as_of(login, account)
        view = login.data.account_view(account, as_of)
        depository = account.template.account_type in {"Checking", "Savings"}
        routing = login.institution.routing_numbers
        return {
            "UserInstitutionID": login.login_id,
            "MemberID": login.login_id,
            "InstitutionID": login.institution.institution_id,
            "AccountID": account.account_id,
            "AccountName": account.name,
            "AccountNumber": account.number,
            "AccountType": account.template.account_type,
            "SubType": account.template.sub_type,
            "Balance": cents_to_decimal(view.balance),
            "AvailableBalance": None
            if view.available is None
            else cents_to_decimal(view.available),
            "BalanceCurrency": login.institution.currency_symbol,
            "LastUpdated": _v2_date(as_of) if v2 else _stamp(login.refreshed_at.get(account.index)),
            "DueDate": (_v2_date if v2 else _v1_date)(view.due_date),
            "Status": "Tracked",
            "FullAccountNumber": None,
            "RoutingNumber": routing[0] if depository and routing else None,
            "InstitutionNumber": None,
            "TransitNumber": None,
            "OwnerName": "Sandbox Account Holder",
        }

    def transaction_json(
        self, login: Login, account: AccountData, view: TxnView, *, v2: bool
    ) -> dict[str, Any]:
        day = _v2_date if v2 else _v1_date
        txn = view.txn
        return {
            "ID": view.record_id,
            "TransactionID": view.transaction_id,
            "UserID": login.user_id,
            "UserInstitutionAccountID": account.account_id,
            "Status": "Pending" if view.pending else "Posted",
            "Type": "DEBIT" if view.amount < 0 else "CREDIT",
            "Amount": cents_to_decimal(view.amount),
            "Currency": login.institution.currency_symbol,
            "Date": day(txn.day),
            "TransactionDate": day(txn.day),
            "PostDate": day(view.post_day),
            "Description": txn.description,
            "Balance": None if view.balance is None else cents_to_decimal(view.balance),
            "Merchant": txn.merchant,
            "Category": txn.category,
            "CheckNum": txn.check_num,
            "Memo": txn.memo,
            "CheckImage": None,
        }

    def transactions_in(
        self, login: Login, account: AccountData, start: dt.date, end: dt.date, *, v2: bool
    ) -> list[dict[str, Any]]:
        if start > end:
            return []
        views = login.data.transactions(account, self.state.as_of(login, account))
        return [
            self.transaction_json(login, account, v, v2=v2)
            for v in views
            if start <= v.txn.day <= end
        ]

    def customer_json(self, customer: Customer) -> dict[str, Any]:
        members = self.state.logins_of(customer.user_id, customer.customer_id)
        return {
            "CustomerID": customer.customer_id,
            "CustomerName": customer.name,
            "UniqueID": customer.unique_id,
            "Source": customer.source,
            "MemberIDs": [m.login_id for m in members],
        }

    def member_json(self, login: Login) -> dict[str, Any]:
        return {
            "MemberID": login.login_id,
            "UserInstitutionID": login.login_id,
            "InstitutionID": login.institution.institution_id,
            "InstitutionName": login.institution.name,
            "JobID": login.last_job_id,
            "UserName": login.username,
            "Status": "Connected" if login.connected else "Pending",
        }

    def job_json(self, job: SandboxJob) -> dict[str, Any]:
        return job.render(self.state.clock())


# --- handlers -----------------------------------------------------------------------------------


def _institution(app: SandboxApp, institution_id: str) -> InstitutionRecord:
    record = app.state.catalogue.by_id(institution_id)
    if record is None:
        raise NotFoundError("Institution")
    return record


def health_check(app: SandboxApp, req: Request) -> Reply:
    return Reply(200, "this is online.")


def search_by_name(app: SandboxApp, req: Request) -> Reply:
    found = app.state.catalogue.search(req.text("InstitutionName"))
    return Reply(200, [app.institution_json(r) for r in found])


def institution_by_id(app: SandboxApp, req: Request) -> Reply:
    return Reply(200, app.institution_json(_institution(app, req.text("InstitutionID"))))


def institution_by_routing(app: SandboxApp, req: Request) -> Reply:
    found = app.state.catalogue.by_routing_number(req.text("RoutingNumber"))
    return Reply(200, [app.institution_json(r) for r in found])


def v2_institutions(app: SandboxApp, req: Request) -> Reply:
    query = req.query.get("query", "")
    records = app.state.catalogue.search(query) if query else list(app.state.catalogue)
    return Reply(200, [app.institution_json(r) for r in records])


def create_login(app: SandboxApp, req: Request) -> Reply:
    record = _institution(app, req.text("InstitutionID"))
    username = req.text("UserName")
    password = req.text("Password", required=record.login_form_password.lower() != "none")
    _, job = app.state.create_login(req.user_id, record, username, password)
    return Reply(200, {"JobID": job.job_id, "UserInstitutionID": job.login_id})


def retry_login(app: SandboxApp, req: Request) -> Reply:
    login = app.state.login(req.user_id, req.text("UserInstitutionID"))
    job = app.state.start_job(login, job_type="AddAccounts", refresh=False)
    return Reply(200, {"JobID": job.job_id, "UserInstitutionID": login.login_id})


def update_login(app: SandboxApp, req: Request) -> Reply:
    login = app.state.login(req.user_id, req.text("UserInstitutionID"))
    job = app.state.update_login(login, req.text("UserName"), req.text("Password"))
    return Reply(200, {"JobID": job.job_id, "UserInstitutionID": login.login_id})


def delete_login(app: SandboxApp, req: Request) -> Reply:
    app.state.delete_login(app.state.login(req.user_id, req.text("UserInstitutionID")))
    return Reply(200, 0)


def refresh_login(app: SandboxApp, req: Request) -> Reply:
    login = app.state.login(req.user_id, req.text("UserInstitutionID"))
    job = app.state.start_job(login, job_type="Refresh", refresh=True)
    return Reply(200, {"JobID": job.job_id, "UserInstitutionID": login.login_id})


def logins_by_user(app: SandboxApp, req: Request) -> Reply:
    wanted = req.text("UserID", required=False) or req.user_id
    if wanted.lower() != req.user_id.lower():
        return Reply(200, [])
    return Reply(200, [app.login_json(login) for login in app.state.logins_of(req.user_id)])


def login_by_id(app: SandboxApp, req: Request) -> Reply:
    return Reply(200, app.login_json(app.state.login(req.user_id, req.text("UserInstitutionID"))))


def login_accounts(app: SandboxApp, req: Request) -> Reply:
    login = app.state.login(req.user_id, req.text("UserInstitutionID"))
    return Reply(
        200, [app.account_json(login, a, v2=False) for a in app.state.visible_accounts(login)]
    )


def account_by_id(app: SandboxApp, req: Request) -> Reply:
    login, account = app.state.find_account(req.user_id, req.text("AccountID"))
    return Reply(200, app.account_json(login, account, v2=False))


def refresh_account(app: SandboxApp, req: Request) -> Reply:
    login, account = app.state.find_account(req.user_id, req.text("AccountID"))
    job = app.state.start_job(login, job_type="Refresh", refresh=True, account=account)
    return Reply(200, {"JobID": job.job_id})


def job_info(app: SandboxApp, req: Request) -> Reply:
    return Reply(200, app.job_json(app.state.job(req.user_id, req.text("JobID"))))


def _answer(app: SandboxApp, req: Request, step: Step, value: Any) -> Reply:
    job = app.state.job(req.user_id, req.text("JobID"))
    result = job.answer(step, value, app.state.clock())
    return Reply(200, 0 if result is Answer.ACCEPTED else -1)


def security_answer(app: SandboxApp, req: Request) -> Reply:
    return _answer(app, req, Step.SECURITY_QUESTION, req.field("SecurityAnswer"))


def token_input(app: SandboxApp, req: Request) -> Reply:
    choice = req.field("TokenChoice", required=False)
    code = req.field("TokenInput", required=False)
    phone = req.field("VerifyPhoneFlag", required=False)
    given = [
        (step, value)
        for step, value in (
            (Step.TOKEN_METHOD, choice),
            (Step.TOKEN_INPUT, code),
            (Step.TOKEN_READ, phone),
        )
        if value is not None and value != ""
    ]
    if len(given) != 1:
        raise BadInput(
            "TokenChoice", "Send exactly one of TokenChoice, TokenInput and VerifyPhoneFlag."
        )
    return _answer(app, req, *given[0])


def captcha_input(app: SandboxApp, req: Request) -> Reply:
    return _answer(app, req, Step.CAPTCHA, req.field("CaptchaInput"))


def transactions_by_date(app: SandboxApp, req: Request) -> Reply:
    login, account = app.state.find_account(req.user_id, req.text("AccountID"))
    start, end = req.date("StartDate"), req.date("EndDate")
    return Reply(200, app.transactions_in(login, account, start, end, v2=False))


def list_customers(app: SandboxApp, req: Request) -> Reply:
    unique = req.query.get("uniqueid")
    customers = [
        c
        for c in app.state.customers.values()
        if c.user_id == req.user_id and (unique is None or c.unique_id == unique)
    ]
    return Reply(200, [app.customer_json(c) for c in customers])


def create_customer(app: SandboxApp, req: Request) -> Reply:
    customer = app.state.create_customer(
        req.user_id,
        req.text("UniqueID"),
        req.text("Name", required=False) or req.text("UniqueID"),
        req.text("Source", required=False) or "",
    )
    return Reply(200, app.customer_json(customer))


def get_customer(app: SandboxApp, req: Request) -> Reply:
    return Reply(200, app.customer_json(app.state.customer(req.user_id, req.params["customer"])))


def delete_customer(app: SandboxApp, req: Request) -> Reply:
    app.state.delete_customer(app.state.customer(req.user_id, req.params["customer"]))
    return Reply(200)


def _member(app: SandboxApp, req: Request) -> tuple[Customer, Login]:
    customer = app.state.customer(req.user_id, req.params["customer"])
    login = app.state.login(req.user_id, req.params["member"])
    if login.customer_id != customer.customer_id:
        raise NotFoundError("Member")
    return customer, login


def list_members(app: SandboxApp, req: Request) -> Reply:
    customer = app.state.customer(req.user_id, req.params["customer"])
    logins = app.state.logins_of(req.user_id, customer.customer_id)
    return Reply(200, [app.member_json(login) for login in logins])


def create_member(app: SandboxApp, req: Request) -> Reply:
    customer = app.state.customer(req.user_id, req.params["customer"])
    record = _institution(app, req.text("InstitutionID"))
    login, job = app.state.create_login(
        req.user_id,
        record,
        req.text("UserName"),
        req.text("Password", required=record.login_form_password.lower() != "none"),
        customer_id=customer.customer_id,
        job_type=req.params["job_types"],
    )
    return Reply(200, {"MemberID": login.login_id, "JobID": job.job_id})


def get_member(app: SandboxApp, req: Request) -> Reply:
    return Reply(200, app.member_json(_member(app, req)[1]))


def update_member(app: SandboxApp, req: Request) -> Reply:
    _, login = _member(app, req)
    job = app.state.update_login(
        login, req.text("UserName"), req.text("Password"), job_type=req.params["job_types"]
    )
    return Reply(200, {"MemberID": login.login_id, "JobID": job.job_id})


def refresh_member(app: SandboxApp, req: Request) -> Reply:
    _, login = _member(app, req)
    job = app.state.start_job(login, job_type=req.params["job_types"], refresh=True)
    return Reply(200, {"MemberID": login.login_id, "JobID": job.job_id})


def delete_member(app: SandboxApp, req: Request) -> Reply:
    app.state.delete_login(_member(app, req)[1])
    return Reply(200)


def member_accounts(app: SandboxApp, req: Request) -> Reply:
    _, login = _member(app, req)
    return Reply(
        200, [app.account_json(login, a, v2=True) for a in app.state.visible_accounts(login)]
    )


def customer_accounts(app: SandboxApp, req: Request) -> Reply:
    customer = app.state.customer(req.user_id, req.params["customer"])
    return Reply(
        200,
        [
            app.account_json(login, account, v2=True)
            for login in app.state.logins_of(req.user_id, customer.customer_id)
            for account in app.state.visible_accounts(login)
        ],
    )


def _customer_account(app: SandboxApp, req: Request) -> tuple[Login, AccountData]:
    customer = app.state.customer(req.user_id, req.params["customer"])
    login, account = app.state.find_account(req.user_id, req.params["account"])
    if login.customer_id != customer.customer_id:
        raise NotFoundError("Account")
    return login, account


def customer_account(app: SandboxApp, req: Request) -> Reply:
    login, account = _customer_account(app, req)
    return Reply(200, app.account_json(login, account, v2=True))


def customer_transactions(app: SandboxApp, req: Request) -> Reply:
    login, account = _customer_account(app, req)
    today = app.state.today
    start = (
        req.date("startDate", req.query)
        if "startdate" in req.query
        else today - dt.timedelta(days=365)
    )
    end = req.date("endDate", req.query) if "enddate" in req.query else today
    return Reply(200, app.transactions_in(login, account, start, end, v2=True))


def v2_job(app: SandboxApp, req: Request) -> Reply:
    return Reply(200, app.job_json(app.state.job(req.user_id, req.params["job"])))


_CHALLENGES = {
    "securityquestion": Step.SECURITY_QUESTION,
    "tokenmethod": Step.TOKEN_METHOD,
    "tokeninput": Step.TOKEN_INPUT,
    "tokenread": Step.TOKEN_READ,
    "captchaimage": Step.CAPTCHA,
    "captcha": Step.CAPTCHA,
}


def v2_challenge(app: SandboxApp, req: Request) -> Reply:
    job = app.state.job(req.user_id, req.params["job"])
    step = _CHALLENGES.get(_parse.normalise_key(req.params["challenge"]))
    if step is None:
        raise BadInput("challengeType", f"Unknown challenge type '{req.params['challenge']}'.")
    if job.answer(step, req.field("AnswerText"), app.state.clock()) is Answer.REJECTED:
        return Reply(400, {"Message": "The job is not waiting for this answer."})
    return Reply(200)


def _route(method: str, path: str, handler: Handler) -> Route:
    pattern = tuple(part if part.startswith("{") else part.lower() for part in path.split("/"))
    return Route(method, pattern, f"{method} /api/{path}", handler)


_CREATE_VARIANTS = (
    "",
    "WithRefresh",
    "WithFullHistory",
    "WithFullAccountNumbers",
    "WithProfileInfo",
    "WithRewardsInfo",
    "WithAll",
    "WithAllPlusProfile",
)

ROUTES: tuple[Route, ...] = (
    _route("GET", "Institution/HealthCheckAuth", health_check),
    _route("POST", "Institution/GetInstitutionByName", search_by_name),
    _route("POST", "Institution/GetInstitutionByID", institution_by_id),
    _route("POST", "Institution/GetInstitutionByRoutingNumber", institution_by_routing),
    *(
        _route("POST", f"UserInstitution/CreateUserInstitution{v}", create_login)
        for v in _CREATE_VARIANTS
    ),
    _route("POST", "UserInstitution/RetryAddingUserInstitution", retry_login),
    _route("POST", "UserInstitution/UpdateUserInstitution", update_login),
    _route("POST", "UserInstitution/DeleteUserInstitution", delete_login),
    _route("POST", "UserInstitution/RefreshUserInstitution", refresh_login),
    _route("POST", "UserInstitution/GetUserInstitutionsByUser", logins_by_user),
    _route("POST", "UserInstitution/GetUserInstitutionByID", login_by_id),
    _route("POST", "UserInstitution/GetUserInstitutionAccounts", login_accounts),
    _route("POST", "UserInstitutionAccount/GetUserInstitutionAccountByID", account_by_id),
    _route("POST", "UserInstitutionAccount/RefreshUserInstitutionAccount", refresh_account),
    _route("POST", "Job/GetJobInformationByID", job_info),
    _route("POST", "Job/UpdateJobSecurityAnswer", security_answer),
    _route("POST", "Job/UpdateJobTokenInput", token_input),
    _route("POST", "Job/UpdateJobCaptcha", captcha_input),
    _route("POST", "Job/UpdateJobCaptchaInput", captcha_input),
    _route("POST", "Transaction/GetTransactionsByTransactionDate", transactions_by_date),
    _route("GET", "v2/institutions", v2_institutions),
    _route("GET", "v2/customers", list_customers),
    _route("POST", "v2/customers", create_customer),
    _route("GET", "v2/customers/{customer}", get_customer),
    _route("DELETE", "v2/customers/{customer}", delete_customer),
    _route("GET", "v2/customers/{customer}/members", list_members),
    _route("POST", "v2/customers/{customer}/members/{job_types}", create_member),
    _route("GET", "v2/customers/{customer}/members/{member}", get_member),
    _route("DELETE", "v2/customers/{customer}/members/{member}", delete_member),
    _route("PUT", "v2/customers/{customer}/members/{member}/{job_types}", update_member),
    _route("GET", "v2/customers/{customer}/members/{member}/accounts", member_accounts),
    _route("POST", "v2/customers/{customer}/members/{member}/{job_types}", refresh_member),
    _route("GET", "v2/customers/{customer}/accounts", customer_accounts),
    _route("GET", "v2/customers/{customer}/accounts/{account}", customer_account),
    _route("GET", "v2/customers/{customer}/accounts/{account}/transactions", customer_transactions),
    _route("GET", "v2/job/{job}", v2_job),
    _route("PUT", "v2/job/{job}/challenge/{challenge}", v2_challenge),
)


def create_app(config: SandboxConfig) -> SandboxApp:
    """The sandbox as an ASGI app (for uvicorn, or httpx's ``ASGITransport`` in tests)."""
    return SandboxApp(config)
