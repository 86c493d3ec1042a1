import asyncio
from pathlib import Path
from typing import Any

import pytest

from fnmesh.platform.store import Conflict, Event, Expired, NotFound, SqliteStore


def fn(name: str, handler: str = "m:f", namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"handler": handler},
    }


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.db")


def test_create_stamps_metadata(store: SqliteStore) -> None:
    created = store.create(fn("a"))
    meta = created["metadata"]
    assert meta["generation"] == 1
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert store.get("Function", "default", "a") == created


def test_create_twice_is_a_conflict(store: SqliteStore) -> None:
    store.create(fn("a"))
    with pytest.raises(Conflict):
        store.create(fn("a"))


def test_a_stale_update_is_refused_and_changes_nothing(store: SqliteStore) -> None:
    first = store.create(fn("a"))
    second = store.update({**first, "spec": {"handler": "m:g"}})
    assert second["metadata"]["generation"] == 2
    with pytest.raises(Conflict, match="stale"):
        store.update({**first, "spec": {"handler": "m:h"}})
    assert store.get("Function", "default", "a")["spec"] == {"handler": "m:g"}


def test_status_updates_do_not_bump_the_generation(store: SqliteStore) -> None:
    first = store.create(fn("a"))
    after = store.update_status({**first, "status": {"url": "x"}, "spec": {"handler": "ignored"}})
    assert after["metadata"]["generation"] == 1
    assert after["spec"] == {"handler": "m:f"}
    assert after["status"] == {"url": "x"}


def test_list_filters_by_namespace_and_labels(store: SqliteStore) -> None:
    store.create(fn("a"))
    store.create(fn("b", namespace="other"))
    labelled = fn("c")
    labelled["metadata"]["labels"] = {"team": "x"}
    store.create(labelled)
    assert [o["metadata"]["name"] for o in store.list("Function")[0]] == ["a", "c", "b"]
    assert [o["metadata"]["name"] for o in store.list("Function", "other")[0]] == ["b"]
    assert [o["metadata"]["name"] for o in store.list("Function", labels={"team": "x"})[0]] == ["c"]


def test_delete_and_not_found(store: SqliteStore) -> None:
    store.create(fn("a"))
    store.delete("Function", "default", "a")
    with pytest.raises(NotFound):
        store.get("Function", "default", "a")
    with pytest.raises(NotFound):
        store.delete("Function", "default", "a")


def test_a_restart_loses_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    created = store.create(fn("a"))
    version = store.version()
    store.close()
    again = SqliteStore(tmp_path / "state.db")
    assert again.get("Function", "default", "a") == created
    assert again.version() == version
    assert int(again.create(fn("b"))["metadata"]["resourceVersion"]) == version + 1


async def collect(store: SqliteStore, since: int, count: int) -> list[Event]:
    seen: list[Event] = []
    async for event in store.watch(frozenset({"Function"}), since):
        seen.append(event)
        if len(seen) == count:
            break
    return seen


async def test_watch_replays_then_follows_live_changes(store: SqliteStore) -> None:
    start = store.version()
    store.create(fn("a"))
    watcher = asyncio.create_task(collect(store, start, 3))
    await asyncio.sleep(0)
    current = store.get("Function", "default", "a")
    store.update({**current, "spec": {"handler": "m:g"}})
    store.create({**fn("rev"), "kind": "Revision"})  # another kind: not seen
    store.delete("Function", "default", "a")
    events = await asyncio.wait_for(watcher, 5)
    assert [(e.type, e.name) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    assert [e.resource_version for e in events] == sorted(e.resource_version for e in events)


async def test_watch_from_a_compacted_version_expires(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", keep_events=10)
    for i in range(600):
        store.create(fn(f"f{i}"))
    with pytest.raises(Expired):
        await collect(store, 1, 1)
