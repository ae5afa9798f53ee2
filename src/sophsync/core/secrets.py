"""Rotating the encryption key: every stored secret re-encrypted under a new key."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import select

from ..store.models import Connection, ProviderCredentials, RawPayload
from ..store.vault import Vault
from .app import Core

#: Every encrypted column: (model, primary key, column name).
ENCRYPTED = (
    (ProviderCredentials, "access_key_enc"),
    (Connection, "challenge_enc"),
    (RawPayload, "body_enc"),
)


@dataclass(frozen=True)
class Rotation:
    tokens: int
    key_file: str | None


def _write_keys(path: os.PathLike[str], keys: list[bytes]) -> None:
    temporary = f"{os.fspath(path)}.new"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(b"\n".join(keys) + b"\n")
    os.replace(temporary, path)


def rotate(core: Core) -> Rotation:
    """Re-encrypt every stored secret with a new key.

    With a key file: a new key is generated and written in front of the old ones, every token is
    re-encrypted, then the old keys are dropped from the file. With ``SOPHSYNC_SECRET_KEY``:
    put the new key first in the variable (old keys after it), run this, then remove the old keys.
    """
    key_file = core.vault.key_file
    new_key: bytes | None = None
    if key_file is not None:
        vault, new_key = core.vault.with_new_key()
        old = [line.strip().encode() for line in key_file.read_text().splitlines() if line.strip()]
        _write_keys(key_file, [new_key, *old])
    else:
        vault = core.vault
    count = 0
    with core.session() as session:
        for model, column in ENCRYPTED:
            for row in session.scalars(select(model)):
                token = getattr(row, column)
                if token:
                    setattr(row, column, vault.rotate(token))
                    count += 1
    if key_file is not None and new_key is not None:
        _write_keys(key_file, [new_key])
        core.vault = Vault.from_key_file(key_file)
    return Rotation(count, str(key_file) if key_file else None)
