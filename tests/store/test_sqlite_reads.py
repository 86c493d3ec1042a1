"""SqliteReads: the embedded store read from worker threads, beside its writes on the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from fnmesh.platform.store import Event, Expired, SqliteReads, SqliteStore


def fn(name: str, handler: str = "m:f", namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": namespace, "labels": {"n": name}},
        "spec": {"handler": handler},
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    found = SqliteStore(tmp_path / "state.db")
    yield found
    found.close()


@pytest.fixture
def reads(store: SqliteStore) -> Iterator[SqliteReads]:
    found = SqliteReads(store)
    yield found
    found.close()


async def next_events(feed: AsyncIterator[Event], count: int) -> list[Event]:
    return [await asyncio.wait_for(anext(feed), 5) for _ in range(count)]


async def test_lists_match_the_stores_own(store: SqliteStore, reads: SqliteReads) -> None:
    store.create(fn("a"))
    store.create(fn("b", namespace="other"))
    store.create({**fn("s"), "kind": "TrafficSplit"})
    items, version = await asyncio.to_thread(reads.list, "Function")
    assert (items, version) == store.list("Function")
    assert [i["metadata"]["name"] for i in reads.list("Function", "other")[0]] == ["b"]
    assert [i["metadata"]["name"] for i in reads.list("Function", labels={"n": "a"})[0]] == ["a"]


async def test_the_feed_follows_writes_in_order_and_is_woken_by_them(
    store: SqliteStore, reads: SqliteReads
) -> None:
    store.create(fn("before"))
    _, version = reads.list("Function")
    feed = reads.watch(frozenset({"Function"}), version)
    waiting = asyncio.ensure_future(anext(feed))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # nothing new: it waits, it does not poll
    created = store.create(fn("a"))
    store.create({**fn("s"), "kind": "TrafficSplit"})  # not a kind it follows
    updated = store.update({**created, "spec": {"handler": "m:g"}})
    store.delete("Function", "default", "a")
    first = await asyncio.wait_for(waiting, 5)
    rest = await next_events(feed, 2)
    assert [(e.type, e.object["spec"]["handler"]) for e in [first, *rest]] == [
        ("ADDED", "m:f"),
        ("MODIFIED", "m:g"),
        ("DELETED", "m:g"),
    ]
    assert rest[0].resource_version == int(updated["metadata"]["resourceVersion"])
    await feed.aclose()


async def test_a_feed_from_a_version_no_longer_kept_expires(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", keep_events=10)
    reads = SqliteReads(store)
    try:
        for i in range(600):
            store.create(fn(f"f{i}"))
        with pytest.raises(Expired, match="list and watch again"):
            await anext(reads.watch(frozenset({"Function"}), 1))
    finally:
        reads.close()
        store.close()


async def test_reads_in_threads_never_disturb_writes_on_the_loop(
    store: SqliteStore, reads: SqliteReads
) -> None:
    done = threading.Event()
    seen: list[int] = []

    def read_until_done() -> None:
        while not done.is_set():
            items, _ = reads.list("Function")
            seen.append(len(items))

    reader = asyncio.ensure_future(asyncio.to_thread(read_until_done))
    try:
        for i in range(300):
            created = store.create(fn(f"f{i}"))
            store.update({**created, "spec": {"handler": "m:g"}})
            if i % 50 == 0:
                await asyncio.sleep(0)
    finally:
        done.set()
        await reader
    assert reads.list("Function") == store.list("Function")
    assert seen == sorted(seen)  # every list a consistent, growing snapshot
