"""Families, users and roles. Admins manage; members read."""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, select

from ..errors import BadInput, Conflict, NotFound, PermissionDenied
from ..store.models import Family, Role, User
from .app import Core, owned

_hasher = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Actor:
    """Who is asking: a user of one family, with a role."""

    user_id: int
    family_id: int
    role: Role
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.family_id, Role(user.role), user.email)

    @classmethod
    def of_row(cls, user_id: int, family_id: int, role: str, email: str) -> Actor:
        """The actor from a row of :data:`ACTOR_COLUMNS`."""
        return cls(user_id, family_id, Role(role), email)


#: The user's columns an actor is made of, in :meth:`Actor.of_row`'s order.
ACTOR_COLUMNS = (User.id, User.family_id, User.role, User.email)
_ACTOR = select(*ACTOR_COLUMNS).where(User.id == bindparam("user_id"))


def require_admin(actor: Actor, action: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(
            f"Only a family admin can {action}. Ask an admin of your family to do it."
        )


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise BadInput(f"{email!r} is not an email address", field="email")
    return email


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadInput(
            f"The password must be at least {MIN_PASSWORD} characters long", field="password"
        )
    return password


def create_family(core: Core, name: str, admin_email: str, admin_password: str) -> Actor:
    """A new family with its first admin."""
    name = name.strip()
    if not name:
        raise BadInput("The family needs a name", field="name")
    email = _check_email(admin_email)
    _check_password(admin_password)
    with core.session() as session:
        if session.scalar(select(User).where(User.email == email)) is not None:
            raise Conflict(f"A user with the email {email} exists already", code="email_taken")
        family = Family(name=name)
        session.add(family)
        session.flush()
        user = User(
            family_id=family.id,
            email=email,
            password_hash=_hasher.hash(admin_password),
            role=Role.ADMIN.value,
        )
        session.add(user)
        session.flush()
        return Actor.of(user)


def is_set_up(core: Core) -> bool:
    """True once the first family and its admin exist."""
    with core.session() as session:
        return session.scalar(select(User.id).limit(1)) is not None


def first_run(core: Core, name: str, admin_email: str, admin_password: str) -> Actor:
    """Create the first family and its admin; refused once anyone exists."""
    if is_set_up(core):
        raise Conflict("sophsync is set up already; log in", code="set_up_already")
    return create_family(core, name, admin_email, admin_password)


def list_users(core: Core, actor: Actor) -> list[Actor]:
    """The people of the actor's family."""
    with core.session() as session:
        rows = session.scalars(
            select(User).where(User.family_id == actor.family_id).order_by(User.id)
        )
        return [Actor.of(row) for row in rows]


def add_user(core: Core, actor: Actor, email: str, password: str, role: Role) -> Actor:
    """A new user in the actor's family."""
    require_admin(actor, "add users")
    email = _check_email(email)
    _check_password(password)
    with core.session() as session:
        if session.scalar(select(User).where(User.email == email)) is not None:
            raise Conflict(f"A user with the email {email} exists already", code="email_taken")
        user = User(
            family_id=actor.family_id,
            email=email,
            password_hash=_hasher.hash(password),
            role=Role(role).value,
        )
        session.add(user)
        session.flush()
        return Actor.of(user)


def set_role(core: Core, actor: Actor, user_id: int, role: Role) -> Actor:
    """Make a user of the family an admin or a member (a family always keeps one admin)."""
    require_admin(actor, "change roles")
    with core.session() as session:
        user = owned(session, User, user_id, actor.family_id, "user")
        if user.role == Role.ADMIN.value and Role(role) is Role.MEMBER:
            admins = session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.family_id == actor.family_id, User.role == Role.ADMIN.value)
            )
            if (admins or 0) <= 1:
                raise Conflict("A family needs at least one admin", code="last_admin")
        user.role = Role(role).value
        return Actor.of(user)


def authenticate(core: Core, email: str, password: str) -> Actor:
    """The user with this email and password; one message for every failure."""
    failure = BadInput("Wrong email or password", field="password", code="bad_login")
    with core.session() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            _hasher.hash(password)  # take as long as a real check
            raise failure
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise failure from None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        return Actor.of(user)


def get_actor(core: Core, user_id: int) -> Actor:
    """The user as an actor: asked at every signed-in request, so one plain query."""
    with core.autocommit() as connection:
        found = connection.execute(_ACTOR, {"user_id": user_id}).first()
        if found is None:
            raise NotFound(f"No user {user_id}")
        return Actor.of_row(*found)


def families(core: Core) -> list[Family]:
    with core.session() as session:
        return list(session.scalars(select(Family).order_by(Family.id)))


def family_admin(core: Core, family_id: int) -> Actor:
    """The family's first admin (the CLI acts as this user)."""
    with core.session() as session:
        user = session.scalar(
            select(User)
            .where(User.family_id == family_id, User.role == Role.ADMIN.value)
            .order_by(User.id)
        )
        if user is None:
            raise NotFound(f"Family {family_id} has no admin")
        return Actor.of(user)
