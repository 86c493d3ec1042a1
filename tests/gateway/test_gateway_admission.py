"""The gateway against the admission contract: a fake ``Admission`` decides who goes
through it and refuses with its own status and reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from test_gateway_forward import HELLO, Authority, Replica, function, revision, split

from fnmesh.platform.admission import Refused
from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.http import HttpServer, Peer, Request, Response, serve
from fnmesh.platform.mesh.identity import IdentityClient, InProcessEndpoint, component_identity
from fnmesh.platform.store import SqliteStore

PEER = Peer(("127.0.0.1", 40000), False, None)


class FakeAdmission:
    """Says ``through`` as told; ``admit`` refuses with ``refusal`` or lets through."""

    def __init__(self, *, through: bool = False, refusal: Refused | None = None) -> None:
        self.answer = through
        self.refusal = refusal
        self.asked: list[tuple[str, str, int]] = []
        self.admitted: list[tuple[str, str, str, int]] = []

    def through(self, namespace: str, revision: str, ready: int) -> bool:
        self.asked.append((namespace, revision, ready))
        return ready == 0 or self.answer

    @contextlib.asynccontextmanager
    async def admit(
        self, namespace: str, function: str, revision: str, concurrency: int
    ) -> AsyncIterator[None]:
        self.admitted.append((namespace, function, revision, concurrency))
        if self.refusal is not None:
            raise self.refusal
        yield


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
async def replica(authority: Authority) -> AsyncIterator[Replica]:
    replica = Replica("hello-00001-a")
    context = authority.server_context(HELLO)
    server: HttpServer = await serve(replica.handle, "127.0.0.1", 0, ssl=context)
    replica.server = server
    yield replica
    await server.close(drain_timeout=0.5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
async def table(store: SqliteStore) -> AsyncIterator[RouteTable]:
    table = RouteTable(store)
    table.start()
    await asyncio.wait_for(table.synced.wait(), 5)
    yield table
    await table.close()


@contextlib.asynccontextmanager
async def gateway_with(
    table: RouteTable, admission: FakeAdmission, authority: Authority
) -> AsyncIterator[Gateway]:
    identity = IdentityClient(
        component_identity("gateway"),
        trust_anchors_pem=authority.ca.trust_anchors_pem,
        endpoint=InProcessEndpoint(authority.certifier),
        credential="",
    )
    await identity.start()
    gateway = Gateway(
        table,
        domain="fn.localhost",
        max_body_bytes=1 << 20,
        upstream_timeout=5.0,
        tls=identity.client_context(),
        admission=admission,
    )
    try:
        yield gateway
    finally:
        await gateway.close(drain_timeout=0.5)
        await identity.close()


async def invoke(gateway: Gateway) -> Response:
    return await gateway.handle(Request("GET", b"/fn/hello/", [(b"host", b"x")]), PEER)


async def routed(table: RouteTable, replicas: int) -> None:
    async def wait() -> None:
        while True:
            routes = table.get("default", "hello")
            if routes is not None and len(routes.endpoints.get("hello-00001", ())) == replicas:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), 5)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (503, "revision hello-00001 has 10 requests waiting for capacity, the most it holds"),
        (504, "revision hello-00001 had no ready replica within 60s (activation deadline)"),
    ],
)
async def test_a_refusal_is_answered_with_its_status_and_reason(
    table: RouteTable, store: SqliteStore, authority: Authority, status: int, reason: str
) -> None:
    store.create(function())
    store.create(revision("hello-00001"))  # scaled to zero: no ready replica
    store.create(split("hello", ("hello-00001", 100)))
    await routed(table, 0)
    admission = FakeAdmission(refusal=Refused(status, reason))
    async with gateway_with(table, admission, authority) as gateway:
        response = await invoke(gateway)
    assert response.status == status
    assert json.loads(response.body) == {"error": reason, "function": "hello"}
    assert admission.asked == [("default", "hello-00001", 0)]
    assert admission.admitted == [("default", "hello", "hello-00001", 0)]


async def test_a_revision_with_capacity_skips_admission_unless_it_asks_for_it(
    table: RouteTable, store: SqliteStore, authority: Authority, replica: Replica
) -> None:
    store.create(function())
    store.create(revision("hello-00001", replicas=[replica]))
    store.create(split("hello", ("hello-00001", 100)))
    await routed(table, 1)
    straight = FakeAdmission(through=False, refusal=Refused(503, "never asked"))
    async with gateway_with(table, straight, authority) as gateway:
        assert (await invoke(gateway)).status == 200
    assert straight.asked == [("default", "hello-00001", 1)] and straight.admitted == []

    short = FakeAdmission(through=True)  # short of burst capacity: held, then forwarded
    async with gateway_with(table, short, authority) as gateway:
        response = await invoke(gateway)
    assert response.status == 200 and response.body == b"hello-00001-a\n"
    assert short.admitted == [("default", "hello", "hello-00001", 0)]
    assert len(replica.seen) == 2


def test_a_refusal_is_503_or_504() -> None:
    with pytest.raises(ValueError, match="503 or 504"):
        Refused(500, "nothing")
