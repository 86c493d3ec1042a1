"""Traffic tags at the gateway: path and host forms, whatever the revision's weight.

A real RouteTable over a SqliteStore and stub replicas over plaintext (the mTLS hop has
tests of its own); weights over many requests are checked against the split.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.routing import resolve, tag_splits
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.http import ConnectionPool, HttpServer, Peer, Request, Response, serve
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.store import SqliteReads, SqliteStore


class Replica:
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[bytes] = []
        self.server: HttpServer | None = None

    async def handle(self, request: Request, peer: Peer) -> Response:
        self.seen.append(request.target)
        return Response(200, [(b"content-type", b"text/plain")], self.name.encode())

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    found = SqliteStore(tmp_path / "state.db")
    yield found
    found.close()


@pytest.fixture
async def replicas() -> AsyncIterator[Callable[[str], Any]]:
    started: list[HttpServer] = []

    async def start(name: str) -> Replica:
        replica = Replica(name)
        replica.server = await serve(replica.handle, "127.0.0.1", 0)
        started.append(replica.server)
        return replica

    yield start
    for server in started:
        await server.close(drain_timeout=0.5)


@pytest.fixture
async def gateway(store: SqliteStore) -> AsyncIterator[Gateway]:
    reads = SqliteReads(store)
    table = RouteTable(reads)
    table.start()
    await asyncio.wait_for(table.synced.wait(), 5)
    found = Gateway(table, domain="fn.localhost", max_body_bytes=1 << 20, upstream_timeout=5.0)
    await found.start("127.0.0.1", 0)
    yield found
    await found.close(drain_timeout=0.5)
    await table.close()
    reads.close()


@pytest.fixture
async def client() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool()
    yield pool
    await pool.close()


def function(name: str, traffic: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"handler": "main:handle", "timeout": 2},
        "status": {"traffic": traffic},
    }


def revision(name: str, fn: str, replica: Replica) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: fn}},
        "spec": {"function": fn, "handler": "main:handle", "artifact": {"digest": "d"}},
        "status": {"replicas": [{"name": replica.name, "address": replica.address, "ready": True}]},
    }


def split(name: str, *backends: tuple[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: name}},
        "spec": {"service": name, "backends": [{"service": s, "weight": w} for s, w in backends]},
    }


async def call(
    gateway: Gateway, client: ConnectionPool, target: bytes, host: bytes = b"127.0.0.1"
) -> Response:
    assert gateway.server is not None
    request = Request("GET", target, [(b"host", host)])
    return await client.request("127.0.0.1", gateway.server.port, request, timeout=10.0)


async def until_served(gateway: Gateway, client: ConnectionPool, target: bytes) -> None:
    deadline = time.monotonic() + 5
    while (await call(gateway, client, target)).status != 200:
        assert time.monotonic() < deadline, f"{target!r} was never served"
        await asyncio.sleep(0.02)


def test_host_labels_read_as_tag_and_function() -> None:
    assert tag_splits("canary-hello") == [("canary", "hello")]
    assert tag_splits("a-b-c") == [("a", "b-c"), ("a-b", "c")]
    assert tag_splits("hello") == []
    assert tag_splits("-x") == [] and tag_splits("x-") == []
    route = resolve(b"next-hello.default.fn.localhost", b"/p", b"fn.localhost")
    assert route is not None and route.function == "next-hello" and route.tag is None
    tagged = resolve(None, b"/fn/hello@next/p?q=1", b"fn.localhost")
    assert tagged is not None and (tagged.function, tagged.tag, tagged.target) == (
        "hello",
        "next",
        b"/p?q=1",
    )


async def test_a_tag_reaches_its_revision_at_zero_percent(
    gateway: Gateway, store: SqliteStore, client: ConnectionPool, replicas: Any
) -> None:
    one, two = await replicas("hello-00001-a"), await replicas("hello-00002-a")
    traffic = [
        {"revision": "hello-00001", "percent": 100},
        {"revision": "hello-00002", "percent": 0, "tag": "next"},
    ]
    store.create(revision("hello-00001", "hello", one))
    store.create(revision("hello-00002", "hello", two))
    store.create(split("hello", ("hello-00001", 100)))
    store.create(function("hello", traffic))
    await until_served(gateway, client, b"/fn/hello@next/x")
    for _ in range(20):
        assert (await call(gateway, client, b"/fn/hello/")).body == b"hello-00001-a"
        by_path = await call(gateway, client, b"/fn/hello@next/x?y=1")
        assert by_path.body == b"hello-00002-a"
        host = b"next-hello.default.fn.localhost:8080"
        assert (await call(gateway, client, b"/x", host)).body == b"hello-00002-a"
    assert set(two.seen) == {b"/x?y=1", b"/x"}
    missing = await call(gateway, client, b"/fn/hello@nope/")
    assert missing.status == 404 and "no tag 'nope'" in json.loads(missing.body)["error"]
    nobody = await call(gateway, client, b"/", b"nope-hello.default.fn.localhost")
    assert nobody.status == 404


async def test_a_function_named_like_a_tag_wins_the_host(
    gateway: Gateway, store: SqliteStore, client: ConnectionPool, replicas: Any
) -> None:
    one, other = await replicas("hello-00001-a"), await replicas("next-hello-00001-a")
    store.create(revision("hello-00001", "hello", one))
    store.create(split("hello", ("hello-00001", 100)))
    store.create(
        function(
            "hello",
            [{"revision": "hello-00001", "percent": 100, "tag": "next"}],
        )
    )
    await until_served(gateway, client, b"/fn/hello@next/")
    host = b"next-hello.default.fn.localhost"
    assert (await call(gateway, client, b"/", host)).body == b"hello-00001-a"
    store.create(revision("next-hello-00001", "next-hello", other))
    store.create(split("next-hello", ("next-hello-00001", 100)))
    store.create(function("next-hello", [{"revision": "next-hello-00001", "percent": 100}]))
    await until_served(gateway, client, b"/fn/next-hello/")
    assert (await call(gateway, client, b"/", host)).body == b"next-hello-00001-a"


async def test_weights_hold_within_three_percent_over_ten_thousand_requests(
    gateway: Gateway, store: SqliteStore, client: ConnectionPool, replicas: Any
) -> None:
    one, two = await replicas("hello-00001-a"), await replicas("hello-00002-a")
    store.create(revision("hello-00001", "hello", one))
    store.create(revision("hello-00002", "hello", two))
    store.create(split("hello", ("hello-00001", 80), ("hello-00002", 20)))
    store.create(function("hello", []))
    await until_served(gateway, client, b"/fn/hello/")
    one.seen.clear()
    two.seen.clear()

    async def worker(count: int) -> None:
        for _ in range(count):
            assert (await call(gateway, client, b"/fn/hello/")).status == 200

    await asyncio.gather(*(worker(1000) for _ in range(10)))
    total = len(one.seen) + len(two.seen)
    assert total == 10_000
    assert abs(len(two.seen) / total - 0.20) <= 0.03, (len(one.seen), len(two.seen))
