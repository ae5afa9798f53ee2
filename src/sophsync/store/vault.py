"""Encryption at rest: Fernet tokens under rotatable keys.

Keys come from ``SOPHSYNC_SECRET_KEY`` (comma-separated Fernet keys, newest first) or from a key
file in the data directory, created on first use with mode 0600 and holding one key per line,
newest first. The newest key encrypts; every listed key decrypts, so rotation is: add a new key
in front, re-encrypt every stored token (:meth:`Vault.rotate`), then drop the old keys.

Keep the key away from database backups: a backup alone must not decrypt anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..errors import BadInput, SophsyncError


class VaultError(SophsyncError):
    code = "vault"


def _parse_keys(text: str, origin: str) -> list[bytes]:
    keys = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not keys:
        raise BadInput(f"{origin} holds no key", field="secret_key")
    for key in keys:
        try:
            Fernet(key.encode())
        except ValueError:
            raise BadInput(
                f"{origin} holds a key that is not a Fernet key (32 url-safe base64 bytes). "
                "Generate one with `sophsync secrets rotate`, or with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`.",
                field="secret_key",
            ) from None
    return [key.encode() for key in keys]


class Vault:
    """Encrypts and decrypts bytes and JSON with the configured keys."""

    def __init__(self, keys: list[bytes], *, key_file: Path | None = None) -> None:
        """``keys``: Fernet keys (url-safe base64 text as bytes), newest first."""
        if not keys:
            raise BadInput("the vault needs at least one key", field="secret_key")
        self._secrets = keys
        self._keys = [Fernet(key) for key in keys]
        self._fernet = MultiFernet(self._keys)
        self.key_file = key_file

    def __repr__(self) -> str:
        return f"Vault({len(self._keys)} key(s))"

    @classmethod
    def from_secret(cls, secret: str) -> Vault:
        return cls(_parse_keys(secret, "SOPHSYNC_SECRET_KEY"))

    @classmethod
    def from_key_file(cls, path: Path) -> Vault:
        """Load the key file, creating it (mode 0600) with a new key if it does not exist."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            key = Fernet.generate_key()
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(key + b"\n")
        return cls(_parse_keys(path.read_text(), str(path)), key_file=path)

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise VaultError(
                "Stored secrets cannot be decrypted with the configured keys. Restore the key "
                "file (secret.key in the data directory) or SOPHSYNC_SECRET_KEY that was used "
                "to save them."
            ) from None

    def encrypt_text(self, text: str) -> bytes:
        return self.encrypt(text.encode())

    def decrypt_text(self, token: bytes) -> str:
        return self.decrypt(token).decode()

    def encrypt_json(self, value: Any) -> bytes:
        return self.encrypt(json.dumps(value, separators=(",", ":"), default=str).encode())

    def decrypt_json(self, token: bytes) -> Any:
        return json.loads(self.decrypt(token))

    def rotate(self, token: bytes) -> bytes:
        """The same secret, encrypted with the newest key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise VaultError(
                "A stored secret cannot be decrypted with the configured keys."
            ) from None

    def with_new_key(self) -> tuple[Vault, bytes]:
        """A vault with a fresh key in front of these, and that key."""
        key = Fernet.generate_key()
        return Vault([key, *self._secrets], key_file=self.key_file), key

    def derive(self, purpose: str) -> str:
        """A secret for ``purpose`` (such as signing session cookies), derived from the newest
        key: the same in every process that shares the keys, and changed by a rotation."""
        digest = hmac.new(self._secrets[0], f"sophsync:{purpose}".encode(), hashlib.sha256)
        return digest.hexdigest()
