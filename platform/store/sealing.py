"""Sealing secret values for storage: AES-256-GCM with a key kept beside, never inside, the store.

The key is 32 random bytes in a file of its own (``<home>/keys/secrets.key``), created on
first use with mode 0600 in a 0700 folder; a key file that others may read is refused.
Each sealed blob is ``version (1 byte) | nonce (12) | ciphertext+tag``, and its
associated data names what it belongs to (``namespace/name``), so a blob copied onto
another secret's row does not open.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE = 12
KEY_BYTES = 32


class SealingError(Exception):
    """The key is unusable, or a sealed value does not open with it."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SealingError(f"the secrets key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE + 16:
            raise SealingError(f"the stored value of {context} is not in a known format")
        nonce, body = sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :]
        try:
            return self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise SealingError(
                f"the stored value of {context} does not open with the secrets key: the key "
                "file was replaced or the store was copied from another home; restore the "
                "key, or delete and create the secret again"
            ) from None

    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:
        return cls(load_or_create_key(path))


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; a new one (0600, in a 0700 folder) when there is none."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = os.urandom(KEY_BYTES)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


def _read_key(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SealingError(
            f"{path} may be read by others (mode {mode:04o}): run `chmod 600 {path}`"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SealingError(
            f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte key: restore it from a "
            "backup (without it, stored secrets cannot be read)"
        )
    return key
