"""A store whose file cannot grow (SQLite's own "database or disk is full"): every
write fails whole with StoreUnavailable, nothing half-written, and the same writes
succeed once there is room again."""

from pathlib import Path
from typing import Any

import pytest

from fnmesh.platform.store import SqliteStore, StoreUnavailable


def fn(name: str, payload: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"handler": "m:f", "env": {"PAD": payload}},
    }


def fill(store: SqliteStore) -> int:
    """Cap the file at its current size; return the cap to restore."""
    before = int(store._db.execute("PRAGMA max_page_count").fetchone()[0])
    pages = int(store._db.execute("PRAGMA page_count").fetchone()[0])
    store._db.execute(f"PRAGMA max_page_count={pages}")
    return before


def test_writes_fail_whole_while_full_and_work_again_after(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    kept = store.create(fn("kept"))
    version = store.version()
    cap = fill(store)
    big = "x" * 200_000
    with pytest.raises(StoreUnavailable, match=r"database or disk is full.*free disk space"):
        store.create(fn("big", big))
    with pytest.raises(StoreUnavailable):
        store.update({**kept, "spec": {"handler": "m:g", "env": {"PAD": big}}})
    assert not store._db.in_transaction
    assert store.version() == version
    assert store.get("Function", "default", "kept") == kept
    assert [o["metadata"]["name"] for o in store.list("Function")[0]] == ["kept"]

    store._db.execute(f"PRAGMA max_page_count={cap}")
    created = store.create(fn("big", big))
    assert store.get("Function", "default", "big") == created
    assert store.version() > version
    store.close()


def test_the_error_is_a_store_error_with_status_503(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    fill(store)
    with pytest.raises(StoreUnavailable) as caught:
        store.create(fn("big", "x" * 200_000))
    assert caught.value.status == 503
    store.close()
