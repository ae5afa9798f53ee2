"""Where a browser request comes from: the same-site check against cross-site forgery."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request


def same_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in {"same-origin", "none"}
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser request (no Origin on same-origin GET-less clients)
    return urlsplit(origin).netloc == request.headers.get("host")
