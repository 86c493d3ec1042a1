"""The secret stores: sealed in SQLite with a key kept apart, and core Secrets on a cluster."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fnmesh.platform.store import Conflict, NotFound, SqliteSecrets, SqliteStore
from fnmesh.platform.store.sealing import KEY_BYTES, Sealer, SealingError, load_or_create_key
from fnmesh.platform.store.sqlite_secrets import pack_values, unpack_values

PLAINTEXT = b"plaintext-7f3b9c-never-on-disk"
NOW = "2026-12-01T10:00:00Z"


def test_the_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keys" / "secrets.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == key


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    load_or_create_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(SealingError, match=f"chmod 600 {path}"):
        load_or_create_key(path)


def test_a_truncated_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    path.write_bytes(b"short")
    os.chmod(path, 0o600)
    with pytest.raises(SealingError, match="not a 32-byte key"):
        load_or_create_key(path)


def test_sealed_values_open_only_with_their_key_and_context() -> None:
    sealer = Sealer(b"k" * 32)
    sealed = sealer.seal(PLAINTEXT, "secret default/db")
    assert PLAINTEXT not in sealed
    assert sealer.open(sealed, "secret default/db") == PLAINTEXT
    with pytest.raises(SealingError, match="does not open"):
        sealer.open(sealed, "secret default/other")  # a row copied onto another secret
    with pytest.raises(SealingError, match="does not open"):
        Sealer(b"j" * 32).open(sealed, "secret default/db")
    assert "k" * 8 not in repr(sealer)


def test_values_pack_and_unpack() -> None:
    data = {"a": b"", "b.c": b"\x00\xff binary", "z": PLAINTEXT}
    assert unpack_values(pack_values(data)) == data


@pytest.fixture
def secrets(tmp_path: Path) -> Iterator[SqliteSecrets]:
    store = SqliteStore(tmp_path / "state.db")  # the objects share the file
    found = SqliteSecrets(
        tmp_path / "state.db",
        Sealer.from_key_file(tmp_path / "keys" / "secrets.key"),
        now=lambda: NOW,
    )
    yield found
    found.close()
    store.close()


def test_put_info_list_read_delete(secrets: SqliteSecrets) -> None:
    info = secrets.put("default", "db", {"password": PLAINTEXT, "user": b"app"}, replace=False)
    assert (info.name, info.keys, info.created, info.updated) == (
        "db",
        ("password", "user"),
        NOW,
        NOW,
    )
    assert secrets.info("default", "db") == info
    assert [s.name for s in secrets.list("default")] == ["db"]
    assert secrets.list("other") == []
    assert secrets.read("default", "db") == {"password": PLAINTEXT, "user": b"app"}
    with pytest.raises(Conflict, match="--replace"):
        secrets.put("default", "db", {"k": b"v"}, replace=False)
    replaced = secrets.put("default", "db", {"k": b"v"}, replace=True)
    assert replaced.keys == ("k",) and replaced.created == NOW
    assert secrets.read("default", "db") == {"k": b"v"}
    assert secrets.delete("default", "db").name == "db"
    with pytest.raises(NotFound, match="fn secret create db"):
        secrets.read("default", "db")
    with pytest.raises(NotFound):
        secrets.delete("default", "db")


def test_values_never_reach_the_database_file_unsealed(
    secrets: SqliteSecrets, tmp_path: Path
) -> None:
    secrets.put("default", "db", {"password": PLAINTEXT}, replace=False)
    secrets.put("default", "db", {"password": PLAINTEXT + b"-2"}, replace=True)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("state.db")]
    assert any(p.name.endswith("-wal") for p in files)  # the WAL is checked too
    for path in files:
        assert PLAINTEXT not in path.read_bytes(), path.name
    key = (tmp_path / "keys" / "secrets.key").read_bytes()
    for path in files:
        assert key not in path.read_bytes()


def test_a_store_copied_without_its_key_does_not_open(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = SqliteSecrets(db, Sealer(b"a" * 32))
    first.put("default", "db", {"k": PLAINTEXT}, replace=False)
    first.close()
    other = SqliteSecrets(db, Sealer(b"b" * 32))
    with pytest.raises(SealingError, match="restore the key"):
        other.read("default", "db")
    assert [s.name for s in other.list()] == ["db"]  # names stay readable
    other.close()
