"""A family's Sophtron credentials: verify, store encrypted, and build clients from them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection as SQLConnection
from sqlalchemy import Table, bindparam, select

from ..errors import BadInput, NeedsUser, NotFound, Retryable
from ..sophtron import Client, InvalidAccessKey, InvalidCredentials, SophtronError
from ..sophtron.auth import decode_access_key
from ..sophtron.client import DEFAULT_BASE_URL
from ..store.models import ProviderCredentials
from .app import Core
from .families import Actor, require_admin
from .quota import RequestMeter

MISSING = (
    "No Sophtron credentials are saved for this family. An admin enters the Sophtron User ID "
    "and Access Key (Developer Profile > Direct Auth on sophtron.com) in Settings > Bank sync, "
    "or with `sophsync credentials set`."
)


@dataclass(frozen=True)
class CredentialsStatus:
    """What may be shown of a family's credentials: never the Access Key."""

    user_id: str
    base_url: str
    customer_id: str | None
    verified_at: dt.datetime | None


#: What a Sophtron User ID may hold (a GUID; it travels in the FIApiAUTH header).
USER_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def unique_customer_id(family_id: int) -> str:
    """The stable id of the family's Sophtron customer."""
    return f"sophsync-family-{family_id}"


def client_for(
    core: Core,
    user_id: str,
    access_key: str,
    base_url: str | None,
    on_request: Callable[[str], None] | None = None,
) -> Client:
    """A Sophtron client with these credentials (``base_url`` None: the configured one)."""
    return Client(
        user_id,
        access_key,
        base_url=base_url or core.settings.sophtron_base_url or DEFAULT_BASE_URL,
        on_request=on_request,
        **core.sophtron_options,  # type: ignore[arg-type]
    )


def sophtron_error(error: SophtronError) -> Exception:
    """A Sophtron failure as the sophsync error a person can act on."""
    if isinstance(error, InvalidCredentials):
        return NeedsUser(
            "Sophtron rejected the family's User ID or Access Key. An admin must enter them "
            "again (Developer Profile > Direct Auth on sophtron.com); the Access Key is the "
            "base64 key exactly as Sophtron gives it.",
            code="invalid_credentials",
        )
    retry_after = getattr(error, "retry_after", None)
    if error.retryable:
        return Retryable(str(error), retry_after=retry_after, code="sophtron_unavailable")
    return NeedsUser(str(error), code="sophtron_error")


def save_credentials(
    core: Core,
    actor: Actor,
    user_id: str | None = None,
    access_key: str | None = None,
    base_url: str | None = None,
) -> CredentialsStatus:
    """Verify the credentials with Sophtron, find or create the family's customer, and store them.

    Missing values fall back to the family's saved ones (so saving nothing verifies them
    again), then to ``SOPHTRON_USER_ID`` / ``SOPHTRON_ACCESS_KEY`` / ``SOPHTRON_BASE_URL`` from
    the settings.
    """
    require_admin(actor, "change the Sophtron credentials")
    settings = core.settings
    with core.session() as session:
        saved = session.scalar(
            select(ProviderCredentials).where(ProviderCredentials.family_id == actor.family_id)
        )
        if saved is not None:
            user_id = user_id or saved.user_id
            access_key = access_key or core.vault.decrypt_text(saved.access_key_enc)
            base_url = base_url or saved.base_url
    user_id = (user_id or settings.sophtron_user_id or "").strip()
    access_key = (access_key or settings.sophtron_access_key or "").strip()
    base_url = (base_url or settings.sophtron_base_url or "").strip() or None
    if not user_id:
        raise BadInput(
            "Enter the Sophtron User ID (Developer Profile > Direct Auth)", field="user_id"
        )
    if not USER_ID.fullmatch(user_id):
        raise BadInput(
            "The Sophtron User ID is letters, digits and dashes (like "
            "8d0d9991-5e35-4b82-afa4-e93695e5ca7d): copy it again from Developer Profile > "
            "Direct Auth",
            field="user_id",
        )
    if not access_key:
        raise BadInput(
            "Enter the Sophtron Access Key (Developer Profile > Direct Auth)", field="access_key"
        )
    try:
        decode_access_key(access_key)
    except InvalidAccessKey as error:
        raise BadInput(str(error), field="access_key") from None
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise BadInput("The base URL must start with http:// or https://", field="base_url")
    meter = RequestMeter(core, actor.family_id)
    with client_for(core, user_id, access_key, base_url, meter.count) as client:
        try:
            client.health_check_auth()
            unique = unique_customer_id(actor.family_id)
            customer = client.get_customer_by_unique_id(unique) or client.create_customer(
                unique, f"sophsync family {actor.family_id}", "sophsync"
            )
        except InvalidCredentials:
            raise BadInput(
                "Sophtron rejected this User ID and Access Key. Copy both again from Developer "
                "Profile > Direct Auth on sophtron.com; the Access Key is the base64 key exactly "
                "as shown.",
                field="access_key",
                code="invalid_credentials",
            ) from None
        except SophtronError as error:
            raise sophtron_error(error) from None
        finally:
            with core.connection() as plain:
                meter.flush(plain)
    now = core.now()
    with core.session() as session:
        stored = session.scalar(
            select(ProviderCredentials).where(ProviderCredentials.family_id == actor.family_id)
        )
        if stored is None:
            stored = ProviderCredentials(
                family_id=actor.family_id, user_id=user_id, access_key_enc=b""
            )
            session.add(stored)
        stored.user_id = user_id
        stored.access_key_enc = core.vault.encrypt_text(access_key)
        stored.base_url = base_url
        stored.customer_id = customer.customer_id
        stored.verified_at = now
        stored.updated_at = now
        return _status(stored, core)


def _status(stored: ProviderCredentials, core: Core) -> CredentialsStatus:
    return CredentialsStatus(
        user_id=stored.user_id,
        base_url=stored.base_url or core.settings.sophtron_base_url or DEFAULT_BASE_URL,
        customer_id=stored.customer_id,
        verified_at=stored.verified_at,
    )


def credentials_status(core: Core, actor: Actor) -> CredentialsStatus | None:
    with core.session() as session:
        stored = session.scalar(
            select(ProviderCredentials).where(ProviderCredentials.family_id == actor.family_id)
        )
        return _status(stored, core) if stored else None


def remove_credentials(core: Core, actor: Actor) -> None:
    require_admin(actor, "remove the Sophtron credentials")
    with core.session() as session:
        stored = session.scalar(
            select(ProviderCredentials).where(ProviderCredentials.family_id == actor.family_id)
        )
        if stored is None:
            raise NotFound("No Sophtron credentials are saved for this family")
        session.delete(stored)


@contextmanager
def sophtron_for(core: Core, family_id: int) -> Iterator[Client]:
    """The family's Sophtron client for a piece of work: every request it sends is counted in
    the family's monthly usage, and Sophtron failures leave as sophsync errors."""
    meter = RequestMeter(core, family_id)
    try:
        with family_client(core, family_id, meter.count) as client:
            yield client
    except SophtronError as error:
        raise sophtron_error(error) from None
    finally:
        with core.connection() as plain:
            meter.flush(plain)


def family_client(
    core: Core, family_id: int, on_request: Callable[[str], None] | None = None
) -> Client:
    """A Sophtron client with the family's stored credentials."""
    with core.connection() as plain:
        stored = stored_credentials(core, plain, family_id)
    return stored_client(core, stored, on_request)


def stored_client(
    core: Core,
    stored: tuple[str, str, str | None] | None,
    on_request: Callable[[str], None] | None = None,
) -> Client:
    """A Sophtron client with credentials :func:`stored_credentials` read; :class:`NeedsUser`
    when none are saved."""
    if stored is None:
        raise NeedsUser(MISSING, code="no_credentials")
    return client_for(core, *stored, on_request)


def stored_credentials(
    core: Core, db: SQLConnection, family_id: int
) -> tuple[str, str, str | None] | None:
    """The family's Sophtron User ID, Access Key (decrypted) and base URL, read in the caller's
    transaction; None when none are saved."""
    stored = db.execute(_STORED, {"family_id": family_id}).first()
    if stored is None:
        return None
    user_id, access_key_enc, base_url = stored
    return user_id, core.vault.decrypt_text(access_key_enc), base_url


_CREDENTIALS = cast(Table, ProviderCredentials.__table__)
_STORED = select(
    _CREDENTIALS.c.user_id, _CREDENTIALS.c.access_key_enc, _CREDENTIALS.c.base_url
).where(_CREDENTIALS.c.family_id == bindparam("family_id"))
