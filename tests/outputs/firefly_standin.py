"""A local Firefly III for the push tests: real HTTP on 127.0.0.1, state kept, contract checked.

Every request is validated against Firefly III's OpenAPI description
(``../shared/reference/firefly-iii-api-v1.yaml``) before it is handled, and every response
after it is built; a mismatch is recorded in ``violations`` (the tests assert there are none)
and a request that does not validate is answered 400. It keeps what a push needs of Firefly:
accounts (asset, liability, expense, revenue) with opening balances, transaction groups with
their splits, ``external_id`` and ``internal_reference``, and the duplicate hash (SHA-256 of
the submitted split, as Firefly's ``TransactionJournalFactory`` computes it) that answers
"Duplicate of transaction #N." to ``error_if_duplicate_hash``. It enforces Firefly's rules on
which account kinds a withdrawal, deposit or transfer may join, and it computes each account's
balance from the stored transactions.

Balances use the store's sign: money in is positive, so an asset holds a positive balance and a
liability the household owes a negative one. A liability created with ``liability_direction``
"debit" (the household owes it) and opening balance X starts at -X.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import warnings
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "firefly-iii-api-v1.yaml"
VERSION = "6.6.2"
JSON_API = "application/vnd.api+json"
PLAIN_JSON = "application/json"

#: Firefly's long account type names, by our kind.
LONG_TYPE = {
    "asset": "Asset account",
    "expense": "Expense account",
    "revenue": "Revenue account",
    "debt": "Debt",
    "loan": "Loan",
    "mortgage": "Mortgage",
}
LIABILITIES = {"debt", "loan", "mortgage"}
#: Which source kinds may pay which destination kinds, per transaction type (Firefly's
#: ``source_dests`` rules).
ALLOWED = {
    "withdrawal": {
        "asset": {"expense", "debt", "loan", "mortgage"},
        **{kind: {"expense"} for kind in LIABILITIES},
    },
    "deposit": {
        "revenue": {"asset", "debt", "loan", "mortgage"},
        **{kind: {"asset"} for kind in LIABILITIES},
    },
    "transfer": {"asset": {"asset"}, **{kind: LIABILITIES for kind in LIABILITIES}},
}


def load_spec() -> OpenAPI:
    """The OpenAPI description, served from ``/api`` on any host. Its OAuth2 alternative is
    dropped (the validator cannot check it); the bearer scheme stays and is checked."""
    with SPEC.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=yaml.CSafeLoader)
    document["servers"] = [{"url": "/api"}]
    document["security"] = [{"local_bearer_auth": []}]
    return OpenAPI.from_dict(document)


class Invalid(Exception):
    """A request Firefly would refuse with 422: ``errors`` maps fields to messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {"field": [message]}


@dataclass
class Account:
    id: int
    name: str
    kind: str  # asset, expense, revenue, debt, loan, mortgage
    currency: str = "USD"
    role: str | None = None
    direction: str | None = None
    opening: Decimal = Decimal(0)
    opening_date: str | None = None
    notes: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def liability(self) -> bool:
        return self.kind in LIABILITIES

    @property
    def signed_opening(self) -> Decimal:
        if self.liability and self.direction == "debit":
            return -self.opening
        return self.opening


@dataclass
class Group:
    id: int
    splits: list[dict[str, Any]]


class FireflyState:
    """What the stand-in holds."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.groups: dict[int, Group] = {}
        self.hashes: dict[str, int] = {}
        self._ids = 0
        self.lock = threading.Lock()

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def balance(self, account_id: int) -> Decimal:
        account = self.accounts[account_id]
        total = account.signed_opening
        for group in self.groups.values():
            for split in group.splits:
                amount = Decimal(split["amount"])
                if split["source_id"] == str(account_id):
                    total -= amount
                if split["destination_id"] == str(account_id):
                    total += amount
        return total

    def splits(self) -> list[dict[str, Any]]:
        return [split for group in self.groups.values() for split in group.splits]

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a push may change, to compare before and after."""
        return (
            sorted((a.id, a.name, a.kind, a.opening) for a in self.accounts.values()),
            sorted((g.id, json.dumps(g.splits, sort_keys=True)) for g in self.groups.values()),
        )


class FireflyStandIn:
    """The server: ``url`` is the address to give ``--url``; ``violations`` the contract
    mismatches seen; ``fail_next`` statuses to answer before handling the next requests."""

    def __init__(self, api: OpenAPI, token: str) -> None:
        self.api = api
        self.token = token
        self.state = FireflyState()
        self.violations: list[str] = []
        self.requests: list[str] = []
        self.fail_next: list[int] = []
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self.wsgi, threaded=False, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FireflyStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FireflyStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the WSGI app -----------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append(f"{request.method} {request.path}")
        response = self._respond(request)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.api.validate_response(
                    WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response)
                )
            except Exception as error:  # any mismatch is recorded, whatever its kind
                self.violations.append(
                    f"response to {request.method} {request.full_path}: {_explain(error)}"
                )
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.api.validate_request(WerkzeugOpenAPIRequest(request))
            except Exception as error:
                self.violations.append(
                    f"request {request.method} {request.full_path}: {_explain(error)}"
                )
                return _json(400, {"message": str(error)[:500], "exception": "BadRequest"})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json(
                401, {"message": "Unauthenticated.", "exception": "AuthenticationException"}
            )
        if self.fail_next:
            status = self.fail_next.pop(0)
            return _json(status, {"message": "Internal error", "exception": "Exception"})
        try:
            with self.state.lock:
                return self._route(request)
        except Invalid as error:
            return _json(422, {"message": str(error), "errors": error.errors})

    def _route(self, request: Request) -> Response:
        path = request.path.removeprefix("/api")
        method = request.method
        if (method, path) == ("GET", "/v1/about"):
            return _json(
                200,
                {
                    "data": {
                        "version": VERSION,
                        "api_version": VERSION,
                        "php_version": "8.4.0",
                        "os": "Linux",
                        "driver": "sqlite",
                    }
                },
            )
        if (method, path) == ("GET", "/v1/accounts"):
            return self._list_accounts(request)
        if (method, path) == ("POST", "/v1/accounts"):
            return self._create_account(request.get_json())
        if method == "GET" and path.startswith("/v1/accounts/"):
            tail = path.removeprefix("/v1/accounts/")
            account = self.state.accounts.get(int(tail)) if tail.isdigit() else None
            if account is None:
                return _json(404, {"message": "Resource not found", "exception": "NotFound"})
            return _json(200, {"data": self._account_read(account)}, JSON_API)
        if (method, path) == ("GET", "/v1/transactions"):
            return self._list_transactions(request)
        if (method, path) == ("POST", "/v1/transactions"):
            return self._store_transactions(request, request.get_json())
        return _json(404, {"message": "Resource not found", "exception": "NotFound"})

    # --- accounts ---------------------------------------------------------------------------

    def _list_accounts(self, request: Request) -> Response:
        wanted = request.args.get("type", "all")
        kinds = {
            "asset": {"asset"},
            "liabilities": LIABILITIES,
            "liability": LIABILITIES,
            "expense": {"expense"},
            "revenue": {"revenue"},
        }.get(wanted)
        items = [
            self._account_read(a)
            for a in sorted(self.state.accounts.values(), key=lambda a: a.id)
            if kinds is None or a.kind in kinds
        ]
        return self._page(request, "/v1/accounts", items, links=False)

    def _create_account(self, body: dict[str, Any]) -> Response:
        kind = body["type"]
        if kind in {"liability", "liabilities"}:
            for name in ("liability_type", "liability_direction", "interest_period"):
                if not body.get(name):
                    raise Invalid(f"The {name} field is required.", {name: ["Required."]})
            kind = body["liability_type"]
        elif kind == "asset":
            if not body.get("account_role"):
                raise Invalid("The account role is required.", {"account_role": ["Required."]})
        elif kind not in {"expense", "revenue"}:
            raise Invalid("Unsupported account type.", {"type": ["Invalid type."]})
        if body.get("opening_balance") not in (None, "") and not body.get("opening_balance_date"):
            raise Invalid("Opening balance needs a date.", {"opening_balance_date": ["Required."]})
        group = "asset" if kind == "asset" else "liability" if kind in LIABILITIES else kind
        for other in self.state.accounts.values():
            other_group = "liability" if other.liability else other.kind
            if other.name == body["name"] and other_group == group:
                raise Invalid(
                    "The given data was invalid.",
                    {"name": ["This account name is already in use."]},
                )
        try:
            opening = Decimal(body.get("opening_balance") or "0")
        except InvalidOperation:
            raise Invalid("Invalid amount.", {"opening_balance": ["Not an amount."]}) from None
        account = Account(
            id=self.state.next_id(),
            name=body["name"],
            kind=kind,
            currency=body.get("currency_code") or "USD",
            role=body.get("account_role"),
            direction=body.get("liability_direction"),
            opening=opening,
            opening_date=body.get("opening_balance_date"),
            notes=body.get("notes"),
        )
        self.state.accounts[account.id] = account
        return _json(200, {"data": self._account_read(account)}, JSON_API)

    def add_account(self, name: str, kind: str, **extra: Any) -> Account:
        """An account made by hand in Firefly (tests map to it)."""
        with self.state.lock:
            account = Account(id=self.state.next_id(), name=name, kind=kind, **extra)
            self.state.accounts[account.id] = account
            return account

    def _account_read(self, account: Account) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "created_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-01T00:00:00+00:00",
            "active": True,
            "name": account.name,
            "type": "liabilities" if account.liability else account.kind,
            "account_role": account.role,
            "currency_code": account.currency,
            "currency_decimal_places": 2,
            "current_balance": str(self.state.balance(account.id)),
            "current_balance_date": "2026-11-21T23:59:59+00:00",
            "opening_balance": str(account.opening),
            "opening_balance_date": account.opening_date,
            "virtual_balance": "0",
            "notes": account.notes,
            "liability_type": account.kind if account.liability else None,
            "liability_direction": account.direction,
            "include_net_worth": True,
        }
        return {"type": "accounts", "id": str(account.id), "attributes": attributes}

    def _account_named(self, name: str, kinds: set[str], create: str) -> Account:
        for account in sorted(self.state.accounts.values(), key=lambda a: a.id):
            if account.name == name and account.kind in kinds:
                return account
        account = Account(id=self.state.next_id(), name=name, kind=create)
        self.state.accounts[account.id] = account
        return account

    # --- transactions -----------------------------------------------------------------------

    def _store_transactions(self, request: Request, body: dict[str, Any]) -> Response:
        splits = body["transactions"]
        if not splits:
            raise Invalid("Need at least one transaction.", {"transactions": ["Required."]})
        stored = []
        for index, split in enumerate(splits):
            digest = hashlib.sha256(
                json.dumps(
                    {
                        k: v
                        for k, v in split.items()
                        if k not in {"import_hash_v2", "original_source"}
                    },
                    sort_keys=True,
                ).encode()
            ).hexdigest()
            if body.get("error_if_duplicate_hash") and digest in self.state.hashes:
                message = f"Duplicate of transaction #{self.state.hashes[digest]}."
                raise Invalid(message, {f"transactions.{index}.description": [message]})
            stored.append((digest, self._resolve(split, index)))
        group = Group(self.state.next_id(), [])
        for digest, split in stored:
            split["transaction_journal_id"] = str(self.state.next_id())
            group.splits.append(split)
            self.state.hashes[digest] = group.id
        self.state.groups[group.id] = group
        return _json(200, {"data": self._group_read(group)}, JSON_API)

    def _resolve(self, submitted: dict[str, Any], index: int) -> dict[str, Any]:
        kind = submitted["type"]
        if kind not in ALLOWED:
            raise Invalid("Invalid transaction type.", {f"transactions.{index}.type": ["Invalid."]})
        try:
            amount = Decimal(submitted["amount"])
        except InvalidOperation:
            amount = Decimal(0)
        if amount <= 0:
            message = "The amount must be more than zero."
            raise Invalid(message, {f"transactions.{index}.amount": [message]})
        source = self._side(submitted, "source", kind, index)
        destination = self._side(submitted, "destination", kind, index)
        if destination.kind not in ALLOWED[kind].get(source.kind, set()):
            message = (
                f"A {kind} cannot go from a {LONG_TYPE[source.kind]} to a "
                f"{LONG_TYPE[destination.kind]}."
            )
            raise Invalid(message, {f"transactions.{index}.destination_id": [message]})
        currency = submitted.get("currency_code") or source.currency
        split = copy.deepcopy(submitted)
        split.update(
            amount=str(amount),
            currency_code=currency,
            source_id=str(source.id),
            source_name=source.name,
            source_type=LONG_TYPE[source.kind],
            destination_id=str(destination.id),
            destination_name=destination.name,
            destination_type=LONG_TYPE[destination.kind],
        )
        return split

    def _side(self, split: dict[str, Any], side: str, kind: str, index: int) -> Account:
        given_id = split.get(f"{side}_id")
        if given_id:
            account = self.state.accounts.get(int(given_id)) if str(given_id).isdigit() else None
            if account is None:
                message = f"Could not find a valid {side} account with ID #{given_id}."
                raise Invalid(message, {f"transactions.{index}.{side}_id": [message]})
            return account
        name = split.get(f"{side}_name")
        if not name:
            message = f"Could not find a valid {side} account."
            raise Invalid(message, {f"transactions.{index}.{side}_id": [message]})
        if kind == "withdrawal" and side == "destination":
            return self._account_named(name, {"expense"}, "expense")
        if kind == "deposit" and side == "source":
            return self._account_named(name, {"revenue"}, "revenue")
        for account in self.state.accounts.values():
            if account.name == name and account.kind in {"asset", *LIABILITIES}:
                return account
        message = f"Could not find a valid {side} account named {name!r}."
        raise Invalid(message, {f"transactions.{index}.{side}_name": [message]})

    def _group_read(self, group: Group) -> dict[str, Any]:
        return {
            "type": "transactions",
            "id": str(group.id),
            "attributes": {
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
                "user": "1",
                "group_title": None,
                "transactions": [_split_read(split) for split in group.splits],
            },
            "links": {"self": f"{self.url}/api/v1/transactions/{group.id}"},
        }

    def _list_transactions(self, request: Request) -> Response:
        start = request.args.get("start")
        end = request.args.get("end")
        items = []
        for group in sorted(self.state.groups.values(), key=lambda g: g.id):
            day = group.splits[0]["date"][:10]
            if (start and day < start) or (end and day > end):
                continue
            items.append(self._group_read(group))
        return self._page(request, "/v1/transactions", items, links=True)

    def _page(
        self, request: Request, path: str, items: list[dict[str, Any]], *, links: bool
    ) -> Response:
        limit = max(1, int(request.args.get("limit", "50")))
        page = max(1, int(request.args.get("page", "1")))
        pages = max(1, -(-len(items) // limit))
        chosen = items[(page - 1) * limit : page * limit]
        body: dict[str, Any] = {
            "data": chosen,
            "meta": {
                "pagination": {
                    "total": len(items),
                    "count": len(chosen),
                    "per_page": limit,
                    "current_page": page,
                    "total_pages": pages,
                }
            },
        }
        if links:
            base = f"{self.url}/api{path}?limit={limit}"
            body["links"] = {
                "self": f"{base}&page={page}",
                "first": f"{base}&page=1",
                "last": f"{base}&page={pages}",
            }
        return _json(200, body, JSON_API)


def _split_read(split: dict[str, Any]) -> dict[str, Any]:
    """A stored split as Firefly shows it: the fields it accepts, plus the resolved accounts."""
    shown = {k: v for k, v in split.items() if k not in {"piggy_bank_id", "piggy_bank_name"}}
    shown.setdefault("currency_decimal_places", 2)
    return shown


def _explain(error: BaseException) -> str:
    """The validator's error with its cause: the cause says which field broke which rule."""
    cause = error.__cause__
    return f"{type(error).__name__}: {error}" + (f" ({cause})" if cause else "")


def _json(status: int, body: Any, content_type: str = PLAIN_JSON) -> Response:
    return Response(json.dumps(body), status=status, content_type=content_type)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None
