"""Secrets in the embedded store's SQLite file, sealed (AES-GCM) with a key kept apart.

One row per secret in table ``secrets``: its namespace, name, key names, times, and one
sealed blob holding every value. Names and keys are not secret; values never touch the
file (nor its WAL) unsealed. Secrets stay out of the change feed (``events``).
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

from fnmesh.platform.model.secrets import SecretInfo
from fnmesh.platform.store.errors import Conflict, NotFound
from fnmesh.platform.store.sealing import Sealer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    namespace TEXT NOT NULL, name TEXT NOT NULL, keys TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL, sealed BLOB NOT NULL,
    PRIMARY KEY (namespace, name)
);
"""


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _context(namespace: str, name: str) -> str:
    return f"secret {namespace}/{name}"


def pack_values(data: Mapping[str, bytes]) -> bytes:
    """The values as one plaintext: key length, key, value length, value, in key order."""
    out = bytearray()
    for key in sorted(data):
        encoded = key.encode()
        out += len(encoded).to_bytes(4, "big") + encoded
        out += len(data[key]).to_bytes(4, "big") + data[key]
    return bytes(out)


def unpack_values(packed: bytes) -> dict[str, bytes]:
    data: dict[str, bytes] = {}
    at = 0
    while at < len(packed):
        size = int.from_bytes(packed[at : at + 4], "big")
        key = packed[at + 4 : at + 4 + size].decode()
        at += 4 + size
        size = int.from_bytes(packed[at : at + 4], "big")
        data[key] = packed[at + 4 : at + 4 + size]
        at += 4 + size
    return data


class SqliteSecrets:
    """The SecretStore of the embedded platform (in the store's database file)."""

    def __init__(self, path: Path, sealer: Sealer, *, now: Callable[[], str] = _utc_now) -> None:
        self.path = path
        self._sealer = sealer
        self._now = now
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed, not left over
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteSecrets({self.path})"

    def close(self) -> None:
        self._db.close()

    def put(
        self, namespace: str, name: str, data: Mapping[str, bytes], *, replace: bool
    ) -> SecretInfo:
        sealed = self._sealer.seal(pack_values(data), _context(namespace, name))
        keys = json.dumps(sorted(data))
        now = self._now()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT created FROM secrets WHERE namespace=? AND name=?", (namespace, name)
            ).fetchone()
            if row is not None and not replace:
                raise Conflict(
                    f"secret {namespace}/{name} already exists: replace it "
                    "(`fn secret create --replace`) or delete it first"
                )
            created = row[0] if row is not None else now
            self._db.execute(
                "INSERT OR REPLACE INTO secrets (namespace, name, keys, created, updated, sealed)"
                " VALUES (?,?,?,?,?,?)",
                (namespace, name, keys, created, now, sealed),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return SecretInfo(name, namespace, tuple(sorted(data)), created, now)

    def info(self, namespace: str, name: str) -> SecretInfo:
        row = self._db.execute(
            "SELECT namespace, name, keys, created, updated FROM secrets"
            " WHERE namespace=? AND name=?",
            (namespace, name),
        ).fetchone()
        if row is None:
            raise NotFound(_missing(namespace, name))
        return _info(row)

    def list(self, namespace: str | None = None) -> list[SecretInfo]:
        columns = "SELECT namespace, name, keys, created, updated FROM secrets"
        if namespace is None:
            rows = self._db.execute(f"{columns} ORDER BY namespace, name").fetchall()
        else:
            rows = self._db.execute(
                f"{columns} WHERE namespace=? ORDER BY name", (namespace,)
            ).fetchall()
        return [_info(row) for row in rows]

    def read(self, namespace: str, name: str) -> dict[str, bytes]:
        row = self._db.execute(
            "SELECT sealed FROM secrets WHERE namespace=? AND name=?", (namespace, name)
        ).fetchone()
        if row is None:
            raise NotFound(_missing(namespace, name))
        return unpack_values(self._sealer.open(bytes(row[0]), _context(namespace, name)))

    def delete(self, namespace: str, name: str) -> SecretInfo:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            found = self.info(namespace, name)
            self._db.execute("DELETE FROM secrets WHERE namespace=? AND name=?", (namespace, name))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return found


def _missing(namespace: str, name: str) -> str:
    return (
        f"secret {namespace}/{name} not found: create it with "
        f"`fn secret create {name} --from-literal KEY=VALUE` (-n {namespace})"
    )


def _info(row: tuple[str, str, str, str, str]) -> SecretInfo:
    namespace, name, keys, created, updated = row
    return SecretInfo(name, namespace, tuple(json.loads(keys)), created, updated)
