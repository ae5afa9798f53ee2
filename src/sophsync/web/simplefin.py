"""The SimpleFIN protocol's routes: claim a setup token, read the account set, versions.

SimpleFIN clients send no session cookie and no CSRF token: the claim is authorised by the
secret in its path and every read by HTTP Basic credentials from the access URL. So these
routes stand apart from the pages and the REST API: errors are SimpleFIN's ``{"errors": [...]}``
with 403 for any credential that does not open an access (unknown, revoked, wrong secret) and
400 for a bad parameter, named. Nothing here raises past the route; a client never sees a 500
for its input.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..bridges import simplefin
from ..core.app import Core
from ..errors import BadInput

#: Sent with everything that carries credentials or money: no cache may keep it.
NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(prefix=simplefin.PREFIX, include_in_schema=False)


def _core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def errors(status: int, message: str) -> JSONResponse:
    """An error as SimpleFIN clients read them."""
    return JSONResponse({"errors": [message]}, status_code=status, headers=NO_STORE)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The user name and password of an ``Authorization: Basic`` header, if well formed."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


@router.get("/info")
def info() -> Response:
    """The protocol versions this bridge speaks."""
    return JSONResponse({"versions": list(simplefin.VERSIONS)})


@router.get("/access/info")
def access_info() -> Response:
    return info()


@router.post("/claim/{token}")
def claim(token: str, request: Request) -> Response:
    """Exchange a setup token for an access URL (text/plain), once."""
    try:
        url = simplefin.claim(_core(request), token)
    except simplefin.ClaimRefused as refused:
        return errors(403, refused.message)
    return PlainTextResponse(url, headers=NO_STORE)


@router.get("/access/accounts")
def accounts(request: Request) -> Response:
    """The account set of the access whose credentials the request carries."""
    core = _core(request)
    given = basic_credentials(request)
    reader = simplefin.authenticate(core, *given) if given is not None else None
    if reader is None:
        return errors(
            403,
            "The SimpleFIN access is unknown or revoked, or its password is wrong. "
            "Claim a new setup token from sophsync.",
        )
    try:
        query = simplefin.parse_query(request.query_params.multi_items())
        body = simplefin.account_set(core, reader, query)
    except BadInput as bad:
        return errors(400, bad.message)
    return JSONResponse(body, headers=NO_STORE)
