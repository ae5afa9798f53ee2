"""FIApiAUTH request signing, as Sophtron's own samples compute it.

The ``Authorization`` header is ``FIApiAUTH:{user_id}:{signature}:{auth_path}`` where

* ``auth_path`` is the URL from its **last** ``/`` to the end, lower-cased, query string kept;
* ``signature`` is base64(HMAC-SHA256(base64decode(access_key), METHOD "\\n" auth_path)).

The signature depends only on (user id, method, auth path): there is no timestamp or nonce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import InvalidAccessKey

SCHEME = "FIApiAUTH"

__all__ = [
    "SCHEME",
    "AuthorizationHeader",
    "InvalidAccessKey",
    "auth_path",
    "decode_access_key",
    "parse_authorization",
    "sign",
    "signature",
    "verify",
]


def decode_access_key(access_key: str) -> bytes:
    """Decode Sophtron's base64 Access Key into the HMAC key bytes.

    Raises :class:`InvalidAccessKey` when the key is not valid base64 or decodes to nothing.
    """
    cleaned = "".join(access_key.split())
    if not cleaned:
        raise InvalidAccessKey(
            "The Sophtron Access Key is empty. Copy the base64 Access Key shown under "
            "Developer Profile > Direct Auth on sophtron.com."
        )
    try:
        key = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidAccessKey(
            "The Sophtron Access Key is not valid base64. Use the base64 Access Key shown under "
            "Developer Profile > Direct Auth on sophtron.com, exactly as given (it usually ends "
            "with '=')."
        ) from None
    if not key:
        raise InvalidAccessKey(
            "The Sophtron Access Key decodes to nothing. Use the base64 Access Key shown under "
            "Developer Profile > Direct Auth on sophtron.com."
        )
    return key


def auth_path(url: str) -> str:
    """The part of ``url`` from its last ``/``, lower-cased (query string kept)."""
    return url[url.rfind("/") :].lower()


def signature(access_key: str | bytes, method: str, path: str) -> str:
    """base64(HMAC-SHA256(key, METHOD\\npath)) for an already computed auth path."""
    key = access_key if isinstance(access_key, bytes) else decode_access_key(access_key)
    message = f"{method.upper()}\n{path}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def sign(user_id: str, access_key: str | bytes, method: str, url: str) -> str:
    """The full ``Authorization`` header value for a request.

    ``url`` may be a full URL or a relative path; only the text after its last ``/`` is signed.
    ``access_key`` is the base64 Access Key (or the already decoded key bytes).
    """
    path = auth_path(url)
    return f"{SCHEME}:{user_id}:{signature(access_key, method, path)}:{path}"


@dataclass(frozen=True)
class AuthorizationHeader:
    """The parts of an ``FIApiAUTH`` header."""

    user_id: str
    signature: str
    auth_path: str


def parse_authorization(value: str) -> AuthorizationHeader | None:
    """Split an ``FIApiAUTH:{user}:{sig}:{path}`` header; ``None`` if it is not one."""
    parts = value.strip().split(":", 3)
    if len(parts) != 4 or parts[0] != SCHEME or not all(parts[1:3]):
        return None
    return AuthorizationHeader(user_id=parts[1], signature=parts[2], auth_path=parts[3])


def _official_auth_path(path: str, query: str) -> str:
    url = f"{path}?{query}" if query else path
    return auth_path(url)


def verify(
    header: str,
    access_key: str | bytes,
    method: str,
    path: str,
    query: str = "",
    *,
    strict: bool = False,
) -> bool:
    """Check an ``Authorization`` header against the request it came with (server side).

    ``path`` and ``query`` are the request's path and query string as sent on the wire (percent
    escapes are also tried decoded). The HMAC is always recomputed over the auth path *as sent in
    the header*. Lenient mode (the default) then accepts the request when that auth path is a
    suffix of the path or of path + query, which admits every known client; ``strict`` demands
    exactly what Sophtron's samples send: the last ``/`` segment of path + query.
    """
    parsed = parse_authorization(header)
    if parsed is None:
        return False
    expected = signature(access_key, method, parsed.auth_path)
    if not hmac.compare_digest(expected.encode(), parsed.signature.encode()):
        return False
    claimed = parsed.auth_path.lower()
    candidates = {(path, query), (unquote(path), unquote(query))}
    for cand_path, cand_query in candidates:
        if strict:
            if claimed == _official_auth_path(cand_path, cand_query):
                return True
            continue
        full = f"{cand_path}?{cand_query}" if cand_query else cand_path
        if claimed.startswith("/") and (
            cand_path.lower().endswith(claimed) or full.lower().endswith(claimed)
        ):
            return True
    return False
