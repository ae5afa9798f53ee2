"""Personal access tokens for the REST API: shown once, stored as a hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from ..errors import BadInput, NotFound
from ..store.models import ApiToken, User
from .app import Core
from .families import ACTOR_COLUMNS, Actor

PREFIX = "sps_"
#: How exactly a token's ``last_used_at`` is kept: a token in steady use is written at most once
#: a minute, not on every request (a write per request would queue every API call of a SQLite
#: install behind one writer).
LAST_USED_PRECISION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


#: A token's id, last use and user, by the token's hash.
_OWNER = (
    select(ApiToken.id, ApiToken.last_used_at, *ACTOR_COLUMNS)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


_USED = update(ApiToken).where(ApiToken.id == bindparam("token_id"))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(core: Core, actor: Actor, name: str) -> tuple[TokenView, str]:
    """A new token for the actor; the token text is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise BadInput("Name the token (1 to 100 characters)", field="name")
    token = PREFIX + secrets.token_urlsafe(32)
    with core.session() as session:
        row = ApiToken(
            user_id=actor.user_id,
            name=name,
            token_hash=_hash(token),
            prefix=token[:10],
            created_at=core.now(),
        )
        session.add(row)
        session.flush()
        return _view(row), token


def _view(row: ApiToken) -> TokenView:
    return TokenView(row.id, row.name, row.prefix, row.created_at, row.last_used_at)


def list_tokens(core: Core, actor: Actor) -> list[TokenView]:
    with core.session() as session:
        rows = session.scalars(
            select(ApiToken).where(ApiToken.user_id == actor.user_id).order_by(ApiToken.id)
        )
        return [_view(row) for row in rows]


def revoke_token(core: Core, actor: Actor, token_id: int) -> None:
    with core.session() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != actor.user_id:
            raise NotFound(f"No token {token_id} of yours")
        session.delete(row)


def actor_for_token(core: Core, token: str) -> Actor | None:
    """The user a token belongs to, or ``None``.

    Every API call asks this, so it is one plain query, and a write only when the token's
    ``last_used_at`` is older than :data:`LAST_USED_PRECISION`."""
    if not token.startswith(PREFIX):
        return None
    with core.autocommit() as connection:
        found = connection.execute(_OWNER, {"token_hash": _hash(token)}).first()
        if found is None:
            return None
        token_id, last_used_at, user_id, family_id, role, email = found
        now = core.now()
        if last_used_at is None or now - last_used_at >= LAST_USED_PRECISION:
            connection.execute(_USED, {"token_id": token_id, "last_used_at": now})
        return Actor.of_row(user_id, family_id, role, email)
