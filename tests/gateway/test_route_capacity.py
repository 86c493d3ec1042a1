"""The capacity the route table reports to the activator: a revision's own ready replicas.

A request admitted for a revision may wait in the activator while that revision leaves
the split (a rollout promotes the next one); the gateway still forwards it to the
revision it chose, so the revision's capacity must stay what its replicas give, not
drop to zero and strand the request until the activation deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnmesh.activator import Activator, ActivatorConfig
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.store import SqliteReads, SqliteStore

Obj = dict[str, Any]


class NoDemand:
    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None:
        pass

    def poke(self, namespace: str, revision: str) -> None:
        pass


def function(name: str) -> Obj:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"handler": "main:handle"},
    }


def revision(name: str, fn: str, ready: int) -> Obj:
    replicas = [
        {"name": f"{name}-{i}", "address": f"127.0.0.1:{9000 + i}", "ready": True}
        for i in range(ready)
    ]
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: fn}},
        "spec": {"function": fn, "handler": "main:handle", "concurrency": 1},
        "status": {"replicas": replicas},
    }


def split(name: str, to: str) -> Obj:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: name}},
        "spec": {"service": name, "backends": [{"service": to, "weight": 100}]},
    }


async def until(what: str, check: Callable[[], object], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def promoted(table: RouteTable) -> bool:
    routes = table.get("default", "hello")
    return routes is not None and routes.backends == (("hello-2", 100),)


async def test_a_revision_that_leaves_the_split_keeps_its_capacity(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    reads = SqliteReads(store)
    store.create(function("hello"))
    store.create(revision("hello-1", "hello", ready=1))
    store.create(revision("hello-2", "hello", ready=1))
    current = store.create(split("hello", "hello-1"))
    store.create(revision("other-1", "other", ready=1))
    table = RouteTable(reads)
    table.start()
    activator = Activator(table, NoDemand(), ActivatorConfig(activation_deadline=5.0))
    table.listen(activator.refresh)
    try:
        await asyncio.wait_for(table.synced.wait(), 5)
        assert table.ready_replicas("default", "hello", "hello-1") == 1
        assert table.ready_replicas("default", "hello", "other-1") == 0  # another function's
        assert table.ready_replicas("default", "hello", "hello-9") == 0
        async with contextlib.AsyncExitStack() as holding:
            # the only slot of hello-1 is taken; a second request waits for it
            await holding.enter_async_context(activator.admit("default", "hello", "hello-1", 1))
            served: list[str] = []

            async def second() -> None:
                async with activator.admit("default", "hello", "hello-1", 1):
                    served.append("hello-1")

            waiting = asyncio.ensure_future(second())
            await until("the second request to wait", lambda: activator.held("default", "hello-1"))
            store.update({**split("hello", "hello-2"), "metadata": current["metadata"]})
            await until(
                "the promotion", lambda: table.get("default", "hello").backends[0][0] == "hello-2"
            )  # type: ignore[union-attr]
            assert table.ready_replicas("default", "hello", "hello-1") == 1  # still ready
        await asyncio.wait_for(waiting, 2)  # the slot freed: not stranded until the deadline
        assert served == ["hello-1"]
    finally:
        await table.close()
        reads.close()
        store.close()
