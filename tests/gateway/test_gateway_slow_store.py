"""The gateway keeps serving while its store is slow.

The route table reads its store off the gateway's event loop: lists in a worker thread,
and, in embedded mode, the change feed through ``SqliteReads`` (queries in a worker
thread too). Each test injects a store whose reads block their thread (a disk under
write load, an API server far away) until the test lets them go, and checks that a
request to an already-routed function is answered within a small bound meanwhile.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.table import Feed, RouteTable
from fnmesh.platform.http import HttpServer, Peer, Request, Response, serve
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.store import Event, Expired, SqliteReads, SqliteStore

BOUND = 0.25  # seconds a request may take while the store is stuck (it is a few ms)
STUCK = 5.0  # how long a read stays stuck unless the test lets it go

Obj = dict[str, Any]


def function(name: str) -> Obj:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"handler": "main:handle", "timeout": 2},
    }


def revision(name: str, fn: str, address: str) -> Obj:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: fn}},
        "spec": {"function": fn, "handler": "main:handle", "artifact": {"digest": "d"}},
        "status": {"replicas": [{"name": f"{name}-a", "address": address, "ready": True}]},
    }


def split(name: str, revision: str) -> Obj:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: name}},
        "spec": {"service": name, "backends": [{"service": revision, "weight": 100}]},
    }


class Gate:
    """Where a read blocks its thread (``time.sleep`` would do; this one can be opened)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.blocked = threading.Event()  # a read is waiting at the gate now

    def close(self) -> None:
        self.open.clear()
        self.blocked.clear()

    def wait(self) -> None:
        if not self.open.is_set():
            self.blocked.set()
            self.open.wait(STUCK)


class SlowStore:
    """Lists that block at the gate; a change feed the test fills (or expires)."""

    def __init__(self, objects: list[Obj]) -> None:
        self.objects = objects
        self.gate = Gate()
        self.feed: asyncio.Queue[Event | Expired] = asyncio.Queue()

    def list(self, kind: str) -> tuple[list[Obj], int]:
        self.gate.wait()
        return [o for o in self.objects if o["kind"] == kind], 1

    async def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        while True:
            item = await self.feed.get()
            if isinstance(item, Expired):
                raise item
            yield item


class SlowReads(SqliteReads):
    """The embedded store's reader, with every read of the change feed stuck at a gate."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self.gate = Gate()

    def _changes(self, kinds: frozenset[str], last: int) -> tuple[int, tuple[Event, ...]]:
        self.gate.wait()
        return super()._changes(kinds, last)


async def hello(request: Request, peer: Peer) -> Response:
    return Response(200, [(b"content-type", b"text/plain")], b"hello")


async def started(feed: Feed) -> tuple[RouteTable, Gateway]:
    table = RouteTable(feed)
    table.start()
    await asyncio.wait_for(table.synced.wait(), 5)
    gateway = Gateway(table, domain="fn.localhost", max_body_bytes=1 << 20, upstream_timeout=5)
    await gateway.start("127.0.0.1", 0)
    return table, gateway


def timed_call(port: int) -> tuple[int, float]:
    """One request from a thread of its own, so a stalled event loop shows as time."""
    began = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=STUCK * 2)
    try:
        connection.request("GET", "/fn/hello/")
        status = connection.getresponse().status
    finally:
        connection.close()
    return status, time.monotonic() - began


async def until(what: str, check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def calls_while_stuck(port: int, gate: Gate) -> list[float]:
    """Five requests while a read is stuck at ``gate``; how long each took."""
    assert gate.blocked.wait(STUCK), "no read got stuck at the gate"
    took = []
    for _ in range(5):
        status, seconds = timed_call(port)
        assert status == 200
        took.append(seconds)
    assert not gate.open.is_set()  # the read was stuck all along
    return took


async def served_while_stuck(gateway: Gateway, gate: Gate, stick: Callable[[], None]) -> None:
    """Requests to a routed function are answered within BOUND while ``stick()`` has
    made the table read its store, stuck at ``gate``."""
    assert gateway.server is not None
    port = gateway.server.port
    assert (await asyncio.to_thread(timed_call, port))[0] == 200  # routed already
    gate.close()
    try:
        stick()
        took = await asyncio.to_thread(calls_while_stuck, port, gate)
    finally:
        gate.open.set()
    assert max(took) < BOUND, took


async def test_requests_are_served_while_the_store_lists_slowly() -> None:
    replica: HttpServer = await serve(hello, "127.0.0.1", 0)
    address = f"127.0.0.1:{replica.port}"
    objects = [function("hello"), revision("hello-1", "hello", address), split("hello", "hello-1")]
    store = SlowStore(objects)
    table, gateway = await started(store)
    told: list[tuple[str, str]] = []
    table.listen(lambda namespace, name: told.append((namespace, name)))
    try:
        # the feed expires: the table lists everything again, and the lists are stuck
        await served_while_stuck(gateway, store.gate, lambda: store.feed.put_nowait(Expired("")))
        # listed again: listeners (the activator) hear of every function, anything may have
        # changed while the feed was lost
        await until("the listeners to hear of the new list", lambda: told)
        assert told == [("default", "hello")]
    finally:
        await gateway.close(drain_timeout=0.5)
        await table.close()
        await replica.close(drain_timeout=0.5)


async def test_requests_are_served_while_the_change_feed_reads_slowly(tmp_path: Path) -> None:
    replica: HttpServer = await serve(hello, "127.0.0.1", 0)
    address = f"127.0.0.1:{replica.port}"
    store = SqliteStore(tmp_path / "state.db")
    for body in (
        function("hello"),
        revision("hello-1", "hello", address),
        split("hello", "hello-1"),
    ):
        store.create(body)
    reads = SlowReads(store)
    table, gateway = await started(reads)
    try:
        # a write wakes the table's watch, whose read of the change is stuck
        await served_while_stuck(gateway, reads.gate, lambda: store.create(function("other")))
        await until("the change, once let go", lambda: table.get("default", "other"))
    finally:
        await gateway.close(drain_timeout=0.5)
        await table.close()
        await replica.close(drain_timeout=0.5)
        reads.close()
        store.close()
