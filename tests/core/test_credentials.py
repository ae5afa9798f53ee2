"""A family's Sophtron credentials: verification, the v2 customer, encryption, fallbacks."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from sophsync.core import connect, credentials, families
from sophsync.core.app import Core
from sophsync.core.families import Actor
from sophsync.errors import BadInput, NeedsUser, NotFound, PermissionDenied
from sophsync.sandbox import SandboxServer
from sophsync.sophtron import Client
from sophsync.store.models import ProviderCredentials
from sophsync.store.vault import VaultError
from tests.conftest import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_USER_ID, USER_ID
from tests.core.conftest import ADMIN_PASSWORD


def stats(sandbox: SandboxServer) -> dict[str, Any]:
    return httpx.get(f"{sandbox.root}/_sandbox/stats", timeout=30).json()


def calls(sandbox: SandboxServer, route: str) -> int:
    return sum(stats(sandbox)["routes"].get(route, {}).values())


def stored_row(core: Core, family_id: int) -> ProviderCredentials | None:
    with core.session() as session:
        row = session.scalar(
            select(ProviderCredentials).where(ProviderCredentials.family_id == family_id)
        )
        if row is not None:
            session.expunge(row)
        return row


def raw_access_key_enc(core: Core, family_id: int) -> bytes:
    """The stored column as the database holds it, read without the ORM."""
    table = ProviderCredentials.__table__
    with core.engine.connect() as connection:
        value = connection.execute(
            select(table.c.access_key_enc).where(table.c.family_id == family_id)
        ).scalar_one()
    return bytes(value)


def test_save_creates_the_customer_once_and_reuses_it(
    core: Core, engine_sandbox: SandboxServer
) -> None:
    actor = families.create_family(core, "Savers", "savers@example.com", ADMIN_PASSWORD)
    assert credentials.credentials_status(core, actor) is None

    first = credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)
    assert first.user_id == USER_ID
    assert first.base_url == engine_sandbox.url
    assert first.customer_id
    assert first.verified_at == core.now()
    assert calls(engine_sandbox, "GET /api/Institution/HealthCheckAuth") == 1
    assert calls(engine_sandbox, "POST /api/v2/customers") == 1

    second = credentials.save_credentials(core, actor, f"  {USER_ID} ", f" {ACCESS_KEY}\n")
    assert second.customer_id == first.customer_id
    assert second.user_id == USER_ID
    assert calls(engine_sandbox, "POST /api/v2/customers") == 1
    assert calls(engine_sandbox, "GET /api/Institution/HealthCheckAuth") == 2

    # The customer at Sophtron carries the family's stable unique id.
    unique = credentials.unique_customer_id(actor.family_id)
    assert unique == f"sophsync-family-{actor.family_id}"
    with Client(USER_ID, ACCESS_KEY, base_url=engine_sandbox.url) as client:
        customer = client.get_customer_by_unique_id(unique)
    assert customer is not None
    assert customer.customer_id == first.customer_id
    assert credentials.credentials_status(core, actor) == second

    # Exactly one row per family.
    with core.session() as session:
        rows = session.scalars(
            select(ProviderCredentials).where(ProviderCredentials.family_id == actor.family_id)
        ).all()
    assert len(rows) == 1

    # A second family gets a customer of its own.
    other = families.create_family(core, "Others", "others@example.com", ADMIN_PASSWORD)
    theirs = credentials.save_credentials(core, other, USER_ID, ACCESS_KEY)
    assert theirs.customer_id != first.customer_id
    assert calls(engine_sandbox, "POST /api/v2/customers") == 2


def test_status_never_shows_the_access_key(core: Core, admin: Actor) -> None:
    status = credentials.credentials_status(core, admin)
    assert status is not None
    names = {item.name for item in dataclasses.fields(status)}
    assert names == {"user_id", "base_url", "customer_id", "verified_at"}
    shown = repr(status) + str(dataclasses.asdict(status))
    assert ACCESS_KEY not in shown
    assert ACCESS_KEY.rstrip("=") not in shown
    assert base64.b64decode(ACCESS_KEY).decode() not in shown
    assert status.user_id == USER_ID


def test_invalid_credentials_are_refused(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    before = stored_row(core, admin.family_id)
    assert before is not None

    with pytest.raises(BadInput) as not_base64:
        credentials.save_credentials(core, admin, USER_ID, "this is not base64!!")
    assert not_base64.value.field == "access_key"
    assert "base64" in not_base64.value.message
    assert "this is not base64" not in not_base64.value.message

    with pytest.raises(BadInput) as wrong_key:
        credentials.save_credentials(core, admin, USER_ID, "AAAA")
    assert wrong_key.value.code == "invalid_credentials"
    assert wrong_key.value.field == "access_key"

    with pytest.raises(BadInput) as unknown_user:
        credentials.save_credentials(
            core, admin, "00000000-1111-2222-3333-444444444444", ACCESS_KEY
        )
    assert unknown_user.value.code == "invalid_credentials"

    # The key of another developer account with this user id does not sign for it either.
    with pytest.raises(BadInput) as crossed:
        credentials.save_credentials(core, admin, USER_ID, OTHER_ACCESS_KEY)
    assert crossed.value.code == "invalid_credentials"

    with pytest.raises(BadInput) as empty:
        credentials.save_credentials(core, admin, USER_ID, "   ")
    assert empty.value.field == "access_key"
    with pytest.raises(BadInput) as no_user:
        credentials.save_credentials(core, admin, "  ", ACCESS_KEY)
    assert no_user.value.field == "user_id"
    with pytest.raises(BadInput) as bad_url:
        credentials.save_credentials(core, admin, USER_ID, ACCESS_KEY, "ftp://example.com/api")
    assert bad_url.value.field == "base_url"

    # The refused attempts left the saved credentials alone.
    after = stored_row(core, admin.family_id)
    assert after is not None
    assert after.user_id == USER_ID
    assert after.access_key_enc == before.access_key_enc
    assert core.vault.decrypt_text(after.access_key_enc) == ACCESS_KEY
    assert calls(engine_sandbox, "POST /api/v2/customers") == 1


def test_another_developer_account_replaces_the_credentials(
    core: Core, admin: Actor, engine_sandbox: SandboxServer
) -> None:
    first = credentials.credentials_status(core, admin)
    assert first is not None
    replaced = credentials.save_credentials(core, admin, OTHER_USER_ID, OTHER_ACCESS_KEY)
    assert replaced.user_id == OTHER_USER_ID
    row = stored_row(core, admin.family_id)
    assert row is not None
    assert core.vault.decrypt_text(row.access_key_enc) == OTHER_ACCESS_KEY
    # Requests now go out under the other developer account.
    found = connect.search_institutions(core, admin, "Sophtron Bank")
    assert found
    assert stats(engine_sandbox)["users"].get(OTHER_USER_ID, 0) >= 3


def test_members_cannot_save_or_remove(core: Core, admin: Actor, member: Actor) -> None:
    with pytest.raises(PermissionDenied):
        credentials.save_credentials(core, member, USER_ID, ACCESS_KEY)
    with pytest.raises(PermissionDenied):
        credentials.save_credentials(core, member, USER_ID, "AAAA")
    with pytest.raises(PermissionDenied):
        credentials.remove_credentials(core, member)
    assert stored_row(core, admin.family_id) is not None
    # Members may read the status.
    status = credentials.credentials_status(core, member)
    assert status is not None
    assert status.user_id == USER_ID


def test_removed_credentials_stop_every_sophtron_action(core: Core, admin: Actor) -> None:
    assert connect.search_institutions(core, admin, "Sophtron Bank NoMFA")
    credentials.remove_credentials(core, admin)
    assert credentials.credentials_status(core, admin) is None
    assert stored_row(core, admin.family_id) is None
    with pytest.raises(NeedsUser) as raised:
        connect.search_institutions(core, admin, "Sophtron Bank")
    assert raised.value.code == "no_credentials"
    assert "Access Key" in raised.value.message
    with pytest.raises(NeedsUser) as starting:
        connect.start_connection(core, admin, "926623ca-5952-4921-8f77-2023f1cdde8e", "smith", "pw")
    assert starting.value.code == "no_credentials"
    with pytest.raises(NotFound):
        credentials.remove_credentials(core, admin)


def test_settings_supply_missing_values(
    make_core: Callable[..., Core], engine_sandbox: SandboxServer
) -> None:
    core = make_core(engine_sandbox, sophtron_user_id=USER_ID, sophtron_access_key=ACCESS_KEY)
    actor = families.create_family(core, "Env", "env@example.com", ADMIN_PASSWORD)
    status = credentials.save_credentials(core, actor)
    assert status.user_id == USER_ID
    assert status.customer_id
    row = stored_row(core, actor.family_id)
    assert row is not None
    assert core.vault.decrypt_text(row.access_key_enc) == ACCESS_KEY
    assert connect.search_institutions(core, actor, "Sophtron Bank TokenRead")

    # Without settings and arguments, nothing is saved.
    bare = make_core(engine_sandbox)
    other = families.create_family(bare, "Bare", "bare@example.com", ADMIN_PASSWORD)
    with pytest.raises(BadInput) as raised:
        credentials.save_credentials(bare, other)
    assert raised.value.field == "user_id"
    assert credentials.credentials_status(bare, other) is None


def test_access_key_is_stored_encrypted(
    make_core: Callable[..., Core], engine_sandbox: SandboxServer
) -> None:
    core = make_core(engine_sandbox, secret_key=Fernet.generate_key().decode())
    actor = families.create_family(core, "Vaulted", "vault@example.com", ADMIN_PASSWORD)
    credentials.save_credentials(core, actor, USER_ID, ACCESS_KEY)

    raw = raw_access_key_enc(core, actor.family_id)
    assert raw
    assert raw != ACCESS_KEY.encode()
    assert ACCESS_KEY.encode() not in raw
    assert ACCESS_KEY.rstrip("=").encode() not in raw
    assert base64.b64decode(ACCESS_KEY) not in raw
    assert core.vault.decrypt_text(raw) == ACCESS_KEY

    # A core opened with another key reads the row but cannot decrypt it.
    stranger = make_core(engine_sandbox, secret_key=Fernet.generate_key().decode())
    assert raw_access_key_enc(stranger, actor.family_id) == raw
    with pytest.raises(VaultError) as raised:
        stranger.vault.decrypt_text(raw)
    assert "key" in raised.value.message
    with pytest.raises(VaultError):
        connect.search_institutions(stranger, actor, "Sophtron Bank")
    # The rightful core still can.
    assert connect.search_institutions(core, actor, "Sophtron Bank")


@pytest.mark.parametrize("user_id", ["tést-ïd", "a b", "id:with:colons", "x" * 101, "\U000d372c"])
def test_a_user_id_that_cannot_travel_in_the_auth_header_is_refused(
    core: Core, admin: Actor, user_id: str
) -> None:
    """Even with the saved Access Key to fall back on, a malformed User ID never reaches
    Sophtron (it would not fit the FIApiAUTH header)."""
    before = stored_row(core, admin.family_id)
    with pytest.raises(BadInput) as refused:
        credentials.save_credentials(core, admin, user_id)
    assert refused.value.field == "user_id"
    assert "Developer Profile" in refused.value.message
    after = stored_row(core, admin.family_id)
    assert after is not None
    assert before is not None
    assert after.user_id == before.user_id
