"""Families, users and roles: creation, validation, permissions, authentication, isolation."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, update

from sophsync.core import families, tokens
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, Conflict, NotFound, PermissionDenied
from sophsync.store.models import Family, Role, User
from tests.core.conftest import ADMIN_PASSWORD, Clock

BAD_EMAILS = ["not-an-email", "", "a@b", "two words@example.com", "@x.io", "x@@y.com"]


def stored_user(core: Core, user_id: int) -> User:
    with core.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


def count_users(core: Core) -> int:
    with core.session() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def test_create_family_makes_an_admin_with_an_argon2_hash(core: Core) -> None:
    actor = families.create_family(core, "  The Joneses ", "Parent@Example.com", "s3cret-pass")
    assert actor.role is Role.ADMIN
    assert actor.is_admin
    assert actor.email == "parent@example.com"

    user = stored_user(core, actor.user_id)
    assert user.family_id == actor.family_id
    assert user.role == Role.ADMIN.value
    assert user.email == "parent@example.com"
    assert user.password_hash != "s3cret-pass"
    assert "s3cret-pass" not in user.password_hash
    assert user.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(user.password_hash, "s3cret-pass")

    with core.session() as session:
        family = session.get(Family, actor.family_id)
        assert family is not None
        assert family.name == "The Joneses"

    second = families.create_family(core, "B", "b@example.com", ADMIN_PASSWORD)
    assert second.family_id != actor.family_id
    assert second.user_id != actor.user_id
    assert [family.id for family in families.families(core)] == [
        actor.family_id,
        second.family_id,
    ]


def test_create_family_refuses_duplicates_and_bad_input(core: Core) -> None:
    families.create_family(core, "First", "dup@example.com", ADMIN_PASSWORD)
    with pytest.raises(Conflict) as raised:
        families.create_family(core, "Second", "dup@example.com", ADMIN_PASSWORD)
    assert raised.value.code == "email_taken"
    assert raised.value.http_status == 409
    # Emails are compared without case or surrounding spaces.
    with pytest.raises(Conflict):
        families.create_family(core, "Third", "  DUP@Example.COM ", ADMIN_PASSWORD)

    for email in BAD_EMAILS:
        with pytest.raises(BadInput) as bad_email:
            families.create_family(core, "Family", email, ADMIN_PASSWORD)
        assert bad_email.value.field == "email", email
        assert bad_email.value.http_status == 422

    with pytest.raises(BadInput) as short:
        families.create_family(core, "Family", "short@example.com", "1234567")
    assert short.value.field == "password"
    assert "8" in short.value.message

    with pytest.raises(BadInput) as nameless:
        families.create_family(core, "   ", "noname@example.com", ADMIN_PASSWORD)
    assert nameless.value.field == "name"

    # Nothing of the refused attempts was stored.
    assert count_users(core) == 1
    assert len(families.families(core)) == 1
    # Eight characters are enough.
    assert families.create_family(core, "Family", "short@example.com", "12345678").is_admin


def test_admin_adds_users_to_its_own_family(core: Core, admin: Actor) -> None:
    kid = families.add_user(core, admin, "Kid2@Example.com", "kid password", Role.MEMBER)
    assert kid.family_id == admin.family_id
    assert kid.role is Role.MEMBER
    assert not kid.is_admin
    assert kid.email == "kid2@example.com"
    user = stored_user(core, kid.user_id)
    assert user.role == Role.MEMBER.value
    assert user.password_hash.startswith("$argon2")
    assert "kid password" not in user.password_hash
    assert families.get_actor(core, kid.user_id) == kid

    co_admin = families.add_user(core, admin, "co@example.com", "co-admin pw", Role.ADMIN)
    assert co_admin.is_admin
    assert co_admin.family_id == admin.family_id
    assert stored_user(core, co_admin.user_id).role == Role.ADMIN.value

    with pytest.raises(BadInput) as raised:
        families.add_user(core, admin, "nope", "long enough", Role.MEMBER)
    assert raised.value.field == "email"
    with pytest.raises(BadInput) as raised:
        families.add_user(core, admin, "ok@example.com", "short", Role.MEMBER)
    assert raised.value.field == "password"
    with pytest.raises(Conflict) as conflict:
        families.add_user(core, admin, "ADMIN@example.com", "long enough", Role.MEMBER)
    assert conflict.value.code == "email_taken"
    assert count_users(core) == 3
    with pytest.raises(NotFound):
        families.get_actor(core, 313131)


def test_member_cannot_add_users_or_change_roles(core: Core, admin: Actor, member: Actor) -> None:
    before = count_users(core)
    with pytest.raises(PermissionDenied) as raised:
        families.add_user(core, member, "friend@example.com", "long enough", Role.MEMBER)
    assert raised.value.http_status == 403
    assert "admin" in raised.value.message
    with pytest.raises(PermissionDenied):
        families.add_user(core, member, "friend@example.com", "long enough", Role.ADMIN)
    assert count_users(core) == before

    with pytest.raises(PermissionDenied):
        families.set_role(core, member, member.user_id, Role.ADMIN)
    with pytest.raises(PermissionDenied):
        families.set_role(core, member, admin.user_id, Role.MEMBER)
    assert stored_user(core, member.user_id).role == Role.MEMBER.value
    assert stored_user(core, admin.user_id).role == Role.ADMIN.value


def test_set_role_keeps_the_last_admin(core: Core, admin: Actor, member: Actor) -> None:
    with pytest.raises(Conflict) as raised:
        families.set_role(core, admin, admin.user_id, Role.MEMBER)
    assert raised.value.code == "last_admin"
    assert stored_user(core, admin.user_id).role == Role.ADMIN.value

    promoted = families.set_role(core, admin, member.user_id, Role.ADMIN)
    assert promoted.role is Role.ADMIN
    assert promoted.user_id == member.user_id
    assert stored_user(core, member.user_id).role == Role.ADMIN.value

    # With a second admin the first may step down; then the second is the last one.
    stepped_down = families.set_role(core, admin, admin.user_id, Role.MEMBER)
    assert stepped_down.role is Role.MEMBER
    assert stored_user(core, admin.user_id).role == Role.MEMBER.value
    new_admin = families.get_actor(core, member.user_id)
    with pytest.raises(Conflict) as again:
        families.set_role(core, new_admin, new_admin.user_id, Role.MEMBER)
    assert again.value.code == "last_admin"
    assert stored_user(core, member.user_id).role == Role.ADMIN.value
    # Making an admin an admin again is harmless; unknown users are not found.
    assert families.set_role(core, new_admin, new_admin.user_id, Role.ADMIN).is_admin
    with pytest.raises(NotFound):
        families.set_role(core, new_admin, 987654, Role.ADMIN)


def test_users_of_another_family_cannot_be_touched(core: Core, admin: Actor, member: Actor) -> None:
    other = families.create_family(core, "Neighbours", "next-door@example.com", ADMIN_PASSWORD)
    with pytest.raises(NotFound):
        families.set_role(core, other, member.user_id, Role.ADMIN)
    with pytest.raises(NotFound):
        families.set_role(core, other, admin.user_id, Role.MEMBER)
    assert stored_user(core, member.user_id).role == Role.MEMBER.value
    assert stored_user(core, admin.user_id).role == Role.ADMIN.value
    # And the other way round.
    with pytest.raises(NotFound):
        families.set_role(core, admin, other.user_id, Role.MEMBER)
    assert stored_user(core, other.user_id).role == Role.ADMIN.value
    # A user added by the neighbours lands in their family, not ours.
    added = families.add_user(core, other, "their-kid@example.com", "long enough", Role.MEMBER)
    assert added.family_id == other.family_id != admin.family_id
    # Emails are unique across families.
    with pytest.raises(Conflict):
        families.add_user(core, other, "kid@example.com", "long enough", Role.MEMBER)


def test_authenticate(core: Core, admin: Actor, member: Actor) -> None:
    assert families.authenticate(core, "admin@example.com", ADMIN_PASSWORD) == admin
    assert families.authenticate(core, "  Kid@Example.com ", "another password") == member

    with pytest.raises(BadInput) as wrong_password:
        families.authenticate(core, "admin@example.com", "not the password")
    with pytest.raises(BadInput) as unknown_email:
        families.authenticate(core, "nobody@example.com", ADMIN_PASSWORD)
    assert wrong_password.value.message == unknown_email.value.message
    assert wrong_password.value.code == unknown_email.value.code == "bad_login"
    assert wrong_password.value.field == unknown_email.value.field
    assert "nobody@example.com" not in unknown_email.value.message
    # Another user's password does not open this account.
    with pytest.raises(BadInput):
        families.authenticate(core, "kid@example.com", ADMIN_PASSWORD)
    # A failed attempt leaves the stored hash working; a role change shows at the next login.
    families.set_role(core, admin, member.user_id, Role.ADMIN)
    again = families.authenticate(core, "kid@example.com", "another password")
    assert again.is_admin
    assert again.user_id == member.user_id


def test_family_admin(core: Core, admin: Actor, member: Actor) -> None:
    assert families.family_admin(core, admin.family_id) == admin
    families.set_role(core, admin, member.user_id, Role.ADMIN)
    assert families.family_admin(core, admin.family_id) == admin
    families.set_role(core, admin, admin.user_id, Role.MEMBER)
    found = families.family_admin(core, admin.family_id)
    assert found.user_id == member.user_id
    assert found.is_admin

    other = families.create_family(core, "Others", "others@example.com", ADMIN_PASSWORD)
    assert families.family_admin(core, other.family_id) == other
    assert families.family_admin(core, admin.family_id).user_id == member.user_id
    with pytest.raises(NotFound):
        families.family_admin(core, 424242)


def test_the_reads_every_request_makes_hold_no_transaction_open_on_postgresql(
    core: Core, admin: Actor, backend: str
) -> None:
    """``Core.autocommit``: on PostgreSQL each statement commits on its own (no BEGIN and
    COMMIT round trips), so another connection sees a write before the block ends; on SQLite
    the block keeps its transaction and the write is seen when it ends."""
    renamed = update(Family).where(Family.id == admin.family_id).values(name="The Joneses")
    name = select(Family.name).where(Family.id == admin.family_id)
    with core.autocommit() as connection:
        connection.execute(renamed)
        with core.engine.connect() as other:
            seen_meanwhile = other.execute(name).scalar_one()
    assert seen_meanwhile == ("The Joneses" if backend == "postgresql" else "The Smiths")
    with core.engine.connect() as other:
        assert other.execute(name).scalar_one() == "The Joneses"


def test_a_token_in_steady_use_records_its_last_use_once_a_minute(
    core: Core, admin: Actor, clock: Clock
) -> None:
    _, token = tokens.create_token(core, admin, "script")

    def last_used() -> dt.datetime | None:
        return tokens.list_tokens(core, admin)[0].last_used_at

    assert last_used() is None
    first = clock.now
    assert tokens.actor_for_token(core, token) == admin
    assert last_used() == first
    clock.advance(seconds=59)
    assert tokens.actor_for_token(core, token) == admin
    assert last_used() == first
    clock.advance(seconds=1)
    assert tokens.actor_for_token(core, token) == admin
    assert last_used() == clock.now
    assert tokens.actor_for_token(core, token[:-1] + "x") is None
