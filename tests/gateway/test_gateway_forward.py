"""The gateway end to end: a real RouteTable over a SqliteStore, stub replicas over mTLS.

Each stub replica is an HTTP server whose certificate is issued by a CA made with the
identity package; the gateway presents its own identity and checks each replica against
its revision's identity.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.table import RouteTable, revision_identity
from fnmesh.platform.http import ConnectionPool, HttpServer, Peer, Request, Response, serve
from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    Certifier,
    IdentityClient,
    InProcessEndpoint,
    OneTimeTokenVerifier,
    TlsCredentials,
    TokenIssuer,
    component_identity,
    identity_name,
    make_csr,
    server_context,
)
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.store import SqliteReads, SqliteStore

GATEWAY = component_identity("gateway")
HELLO = identity_name("hello", "default")


class Authority:
    def __init__(self, directory: Path) -> None:
        self.ca = CertificateAuthority.load_or_create(directory, datetime.now(UTC))
        self.certifier = Certifier(self.ca, OneTimeTokenVerifier(TokenIssuer()))

    def server_context(self, identity: str) -> ssl.SSLContext:
        request = make_csr(identity)
        issued = self.certifier.issue(request.csr_pem, identity, datetime.now(UTC))
        credentials = TlsCredentials(issued.chain_pem, request.key_pem)
        return server_context(self.ca.trust_anchors_pem, credentials)


class Replica:
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[Request, Peer]] = []
        self.server: HttpServer | None = None

    async def handle(self, request: Request, peer: Peer) -> Response:
        self.seen.append((request, peer))
        return Response(200, [(b"content-type", b"text/plain")], f"{self.name}\n".encode())

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"


StartReplica = Callable[[str, str], Awaitable[Replica]]


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
async def start_replica(authority: Authority) -> AsyncIterator[StartReplica]:
    servers: list[HttpServer] = []

    async def start(name: str, identity: str) -> Replica:
        replica = Replica(name)
        context = authority.server_context(identity)
        replica.server = await serve(replica.handle, "127.0.0.1", 0, ssl=context)
        servers.append(replica.server)
        return replica

    yield start
    for server in servers:
        await server.close(drain_timeout=0.5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
async def gateway(store: SqliteStore, authority: Authority) -> AsyncIterator[Gateway]:
    identity = IdentityClient(
        GATEWAY,
        trust_anchors_pem=authority.ca.trust_anchors_pem,
        endpoint=InProcessEndpoint(authority.certifier),
        credential="",
    )
    await identity.start()
    reads = SqliteReads(store)
    table = RouteTable(reads)
    table.start()
    await asyncio.wait_for(table.synced.wait(), 5)
    gateway = Gateway(
        table,
        domain="fn.localhost",
        max_body_bytes=1 << 20,
        upstream_timeout=5.0,
        tls=identity.client_context(),
    )
    await gateway.start("127.0.0.1", 0)
    yield gateway
    await gateway.close(drain_timeout=0.5)
    await table.close()
    reads.close()
    await identity.close()


@pytest.fixture
async def client() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool()
    yield pool
    await pool.close()


def function(name: str = "hello") -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"handler": "main:handle", "timeout": 2},
    }


def split(name: str, *backends: tuple[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: name}},
        "spec": {"service": name, "backends": [{"service": s, "weight": w} for s, w in backends]},
    }


def revision(
    name: str, fn: str = "hello", *, replicas: Sequence[Replica] = (), account: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"function": fn, "handler": "main:handle", "artifact": {"digest": "d"}}
    if account:
        spec["serviceAccount"] = account
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "default", "labels": {LABEL_FUNCTION: fn}},
        "spec": spec,
        "status": {
            "replicas": [{"name": r.name, "address": r.address, "ready": True} for r in replicas]
        },
    }


async def call(gateway: Gateway, client: ConnectionPool, target: bytes) -> Response:
    assert gateway.server is not None
    request = Request("GET", target, [(b"host", b"127.0.0.1")])
    return await client.request("127.0.0.1", gateway.server.port, request, timeout=10.0)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


async def test_a_request_reaches_a_replica_over_mtls(
    gateway: Gateway, store: SqliteStore, client: ConnectionPool, start_replica: StartReplica
) -> None:
    replica = await start_replica("hello-00001-a", HELLO)
    store.create(function())
    store.create(revision("hello-00001", replicas=[replica]))
    store.create(split("hello", ("hello-00001", 100)))

    async def served() -> bool:
        return (await call(gateway, client, b"/fn/hello/x?y=1")).status == 200

    await eventually(served)
    request, peer = replica.seen[-1]
    assert request.target == b"/x?y=1"
    assert request.header(b"x-forwarded-prefix") == b"/fn/hello"
    assert peer.tls and peer.identity == GATEWAY  # the gateway proved who it is


async def test_a_replica_without_the_revisions_identity_gets_nothing(
    gateway: Gateway, store: SqliteStore, client: ConnectionPool, start_replica: StartReplica
) -> None:
    genuine = await start_replica("hello-00001-a", HELLO)
    impostor = await start_replica("hello-00001-b", identity_name("other", "default"))
    store.create(function())
    store.create(revision("hello-00001", replicas=[genuine, impostor]))
    store.create(split("hello", ("hello-00001", 100)))
    await eventually(lambda: _status_is(gateway, client, 200))
    for _ in range(20):
        response = await call(gateway, client, b"/fn/hello/")
        assert response.status == 200 and response.body == b"hello-00001-a\n"
    assert impostor.seen == []


async def test_the_revisions_service_account_names_the_identity(
    gateway: Gateway, store: SqliteStore, client: ConnectionPool, start_replica: StartReplica
) -> None:
    custom = identity_name("billing", "default")
    replica = await start_replica("hello-00001-a", custom)
    store.create(function())
    store.create(revision("hello-00001", replicas=[replica], account="billing"))
    store.create(split("hello", ("hello-00001", 100)))
    await eventually(lambda: _status_is(gateway, client, 200))
    assert len(replica.seen) >= 1


async def test_replicas_appearing_in_the_status_are_followed(
    gateway: Gateway, store: SqliteStore, client: ConnectionPool, start_replica: StartReplica
) -> None:
    store.create(function())
    created = store.create(revision("hello-00001"))
    store.create(split("hello", ("hello-00001", 100)))
    await eventually(lambda: _status_is(gateway, client, 503))
    started = time.monotonic()
    response = await call(gateway, client, b"/fn/hello/")
    assert time.monotonic() - started < 1.0  # no waiting: the answer is immediate
    assert response.status == 503
    assert json.loads(response.body)["error"] == (
        "no ready endpoint for default/hello-00001: it has no ready replica"
    )
    replica = await start_replica("hello-00001-a", HELLO)
    created["status"] = revision("hello-00001", replicas=[replica])["status"]
    store.update_status(created)
    await eventually(lambda: _status_is(gateway, client, 200))


async def test_a_weighted_split_reaches_both_revisions(
    store: SqliteStore, authority: Authority, client: ConnectionPool, start_replica: StartReplica
) -> None:
    one = await start_replica("hello-00001-a", HELLO)
    two = await start_replica("hello-00002-a", HELLO)
    store.create(function())
    store.create(revision("hello-00001", replicas=[one]))
    store.create(revision("hello-00002", replicas=[two]))
    store.create(split("hello", ("hello-00001", 50), ("hello-00002", 50)))
    identity = IdentityClient(
        GATEWAY,
        trust_anchors_pem=authority.ca.trust_anchors_pem,
        endpoint=InProcessEndpoint(authority.certifier),
        credential="",
    )
    await identity.start()
    reads = SqliteReads(store)
    table = RouteTable(reads)
    table.start()
    rolls = iter([0.1, 0.9] * 10)
    gateway = Gateway(
        table,
        domain="fn.localhost",
        max_body_bytes=1 << 20,
        upstream_timeout=5.0,
        tls=identity.client_context(),
        roll=lambda: next(rolls),
    )
    await gateway.start("127.0.0.1", 0)
    try:
        await asyncio.wait_for(table.synced.wait(), 5)
        bodies = [(await call(gateway, client, b"/fn/hello/")).body for _ in range(20)]
        assert bodies.count(b"hello-00001-a\n") == 10 and bodies.count(b"hello-00002-a\n") == 10
    finally:
        await gateway.close(drain_timeout=0.5)
        await table.close()
        reads.close()
        await identity.close()


@pytest.mark.parametrize(
    ("spec", "labels", "namespace", "expected"),
    [
        ({"function": "hello"}, {}, "default", HELLO),
        ({"function": "hello", "serviceAccount": "svc"}, {}, "team", identity_name("svc", "team")),
        ({}, {LABEL_FUNCTION: "hello"}, "default", HELLO),
        ({}, {}, "default", None),
        ({"serviceAccount": "Not_A_Name"}, {}, "default", None),
    ],
)
def test_a_revisions_identity(
    spec: dict[str, str], labels: dict[str, str], namespace: str, expected: str | None
) -> None:
    body = {"metadata": {"name": "r", "namespace": namespace, "labels": labels}, "spec": spec}
    assert revision_identity(body) == expected


async def _status_is(gateway: Gateway, client: ConnectionPool, status: int) -> bool:
    return (await call(gateway, client, b"/fn/hello/")).status == status


async def test_a_revision_that_left_the_split_keeps_its_ready_replicas_counted(
    store: SqliteStore, start_replica: StartReplica
) -> None:
    """A request the activator holds for a revision that a deploy takes out of the split
    must still find the replicas that revision keeps for its grace (it once waited until
    the activation deadline: the capacity fell to zero with the split)."""
    table = RouteTable(store)
    table.start()
    try:
        await asyncio.wait_for(table.synced.wait(), 5)
        old = await start_replica("hello-00001-a", HELLO)
        new = await start_replica("hello-00002-a", HELLO)
        store.create(function())
        store.create(revision("hello-00001", replicas=[old]))
        store.create(revision("hello-00002", replicas=[new]))
        store.create(split("hello", ("hello-00001", 100)))

        async def counted(name: str, want: int) -> bool:
            return table.ready_replicas("default", "hello", name) == want

        await eventually(lambda: counted("hello-00001", 1))
        current = split("hello", ("hello-00002", 100))
        current["metadata"]["resourceVersion"] = store.get("TrafficSplit", "default", "hello")[
            "metadata"
        ]["resourceVersion"]
        store.update(current)

        async def switched() -> bool:
            routes = table.get("default", "hello")
            return routes is not None and routes.backends == (("hello-00002", 100),)

        await eventually(switched)
        routes = table.get("default", "hello")
        assert routes is not None and "hello-00001" not in routes.endpoints
        assert table.ready_replicas("default", "hello", "hello-00001") == 1
        assert [e.name for e in table.endpoints_of("default", "hello-00001")] == ["hello-00001-a"]
    finally:
        await table.close()
