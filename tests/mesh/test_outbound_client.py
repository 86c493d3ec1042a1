"""The outbound stack over real mTLS sockets: retries, budget, ejection, identity, limits.

A certificate authority made with the identity package signs each stub replica's
certificate; the client side presents the gateway's identity from an ``IdentityClient``.
Timing logic runs on a fake clock where it can (ejection backoff, retry budget window).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fnmesh.platform.http import HttpServer, Peer, Request, Response, serve
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
from fnmesh.platform.mesh.outbound import (
    AccrualSpec,
    Address,
    BudgetSpec,
    Outbound,
    RetryPolicy,
    Settings,
    Target,
)

GATEWAY = component_identity("gateway")
HELLO = identity_name("hello", "default")
OTHER = identity_name("other", "default")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Mesh:
    """A CA in a temp dir, the gateway's client identity, and server contexts on demand."""

    def __init__(self, directory: Path) -> None:
        now = datetime.now(UTC)
        self.authority = CertificateAuthority.load_or_create(directory, now)
        self.certifier = Certifier(self.authority, OneTimeTokenVerifier(TokenIssuer()))
        self.client = IdentityClient(
            GATEWAY,
            trust_anchors_pem=self.authority.trust_anchors_pem,
            endpoint=InProcessEndpoint(self.certifier),
            credential="",
        )

    def server_context(self, identity: str) -> ssl.SSLContext:
        request = make_csr(identity)
        issued = self.certifier.issue(request.csr_pem, identity, datetime.now(UTC))
        credentials = TlsCredentials(issued.chain_pem, request.key_pem)
        return server_context(self.authority.trust_anchors_pem, credentials)


@dataclass
class Replica:
    """A stub upstream: answers ``status`` (or waits for ``release``) and counts requests."""

    name: str
    identity: str
    status: int = 200
    seen: list[Request] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)
    release: asyncio.Event | None = None
    server: HttpServer | None = None

    async def handle(self, request: Request, peer: Peer) -> Response:
        self.seen.append(request)
        self.peers.append(peer)
        if self.release is not None:
            await self.release.wait()
        return Response(self.status, [(b"x-replica", self.name.encode())], self.name.encode())

    @property
    def address(self) -> Address:
        assert self.server is not None
        return Address(self.name, "127.0.0.1", self.server.port, self.identity)


@dataclass
class Resetter:
    """An upstream that completes the TLS handshake, reads the request, and resets."""

    name: str
    identity: str
    connections: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.read(1)
        writer.transport.abort()

    @property
    def address(self) -> Address:
        assert self.server is not None
        return Address(
            self.name, "127.0.0.1", self.server.sockets[0].getsockname()[1], self.identity
        )


Start = Callable[..., Awaitable[Replica]]


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    mesh = Mesh(tmp_path / "ca")
    await mesh.client.start()
    yield mesh
    await mesh.client.close()


@pytest.fixture
async def replicas(mesh: Mesh) -> AsyncIterator[Start]:
    started: list[HttpServer] = []

    async def start(name: str, identity: str = HELLO, **options: object) -> Replica:
        replica = Replica(name, identity, **options)  # type: ignore[arg-type]
        replica.server = await serve(
            replica.handle, "127.0.0.1", 0, ssl=mesh.server_context(identity)
        )
        started.append(replica.server)
        return replica

    yield start
    for server in started:
        await server.close(drain_timeout=0.5)


@pytest.fixture
async def resetter(mesh: Mesh) -> AsyncIterator[Resetter]:
    stub = Resetter("reset-1", HELLO)
    stub.server = await asyncio.start_server(
        stub.handle, "127.0.0.1", 0, ssl=mesh.server_context(HELLO)
    )
    yield stub
    stub.server.close()
    await stub.server.wait_closed()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.005)


def first_pick() -> float:
    return 0.0  # P2C's first draw is the first endpoint, and it wins ties


async def outbound(
    mesh: Mesh, registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic
) -> Outbound:
    return Outbound(
        tls=mesh.client.client_context(), registry=registry, clock=clock, roll=first_pick
    )


def target(
    *endpoints: Address, settings: Settings | None = None, name: str = "default/hello-00001"
) -> Target:
    return Target(
        name=name,
        namespace="default",
        function="hello",
        revision="hello-00001",
        endpoints=endpoints,
        settings=settings or Settings(timeout=5.0),
    )


def get(body: bytes = b"", method: str = "GET") -> Request:
    return Request(method, b"/", [(b"host", b"hello")], body)


def reason(response: Response) -> str:
    error = json.loads(response.body)["error"]
    assert isinstance(error, str)
    return error


async def test_a_get_to_a_resetting_replica_succeeds_on_another(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start, resetter: Resetter
) -> None:
    good = await replicas("good-1")
    client = await outbound(mesh, registry)
    destination = target(resetter.address, good.address)
    try:
        response = await client.request(destination, get())
        assert response.status == 200 and response.body == b"good-1"
        assert resetter.connections == 1 and len(good.seen) == 1
        # the replica saw the gateway's identity: the client certificate was presented
        assert good.peers[0].tls and good.peers[0].identity == GATEWAY

        # a POST that reached the resetting replica may have had effects: not retried
        # (a fresh destination, so that the resetting replica is chosen first again)
        fresh = replace(destination, name="default/hello-00002")
        response = await client.request(fresh, get(b"{}", method="POST"))
        assert response.status == 502
        assert "reset-1" in reason(response) and "closed the connection" in reason(response)
        assert resetter.connections == 2 and len(good.seen) == 1
    finally:
        await client.close()


async def test_retries_stay_within_the_budget_when_everything_fails(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start
) -> None:
    sick = [await replicas(f"sick-{i}", status=503) for i in range(3)]
    settings = Settings(
        timeout=5.0,
        retry=RetryPolicy(max_retries=2),
        budget=BudgetSpec(ratio=0.2, min_per_second=1.0, ttl=10.0),  # floor: 10 retries
        accrual=AccrualSpec(threshold=10_000),  # measure the budget alone
    )
    clock = FakeClock()  # the window never slides: every deposit counts
    client = await outbound(mesh, registry, clock)
    destination = target(*(r.address for r in sick), settings=settings)
    requests = 100
    try:
        for _ in range(requests // 10):
            responses = await asyncio.gather(
                *(client.request(destination, get()) for _request in range(10))
            )
            assert all(r.status == 503 for r in responses)
            clock.now += 0.05
    finally:
        await client.close()
    attempts = sum(len(r.seen) for r in sick)
    retries = attempts - requests
    assert retries <= 0.2 * requests + 10
    assert retries >= 0.2 * requests  # the budget was used, not refused outright


async def test_a_failing_replica_is_ejected_then_probed(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start
) -> None:
    sick = await replicas("sick-1", status=500)
    clock = FakeClock()
    client = await outbound(mesh, registry, clock)
    destination = target(sick.address)  # 500 is not retried: one try per request
    try:
        for _ in range(7):
            assert (await client.request(destination, get())).status == 500
        response = await client.request(destination, get())
        assert response.status == 503 and len(sick.seen) == 7  # ejected: not even tried
        assert reason(response) == (
            "no ready endpoint for default/hello-00001: all 1 replicas are ejected after"
            " consecutive failures; the next probe goes in 1.0s"
        )
        clock.now += 1.0  # the first backoff (jitter roll 0) has passed: one probe
        assert (await client.request(destination, get())).status == 500
        assert len(sick.seen) == 8
        assert (await client.request(destination, get())).status == 503  # out for 2 s now
        clock.now += 1.5
        assert (await client.request(destination, get())).status == 503
        clock.now += 0.5
        sick.status = 200
        sick.release = asyncio.Event()  # hold the probe to see that it goes alone
        probe = asyncio.create_task(client.request(destination, get()))
        await eventually(lambda: len(sick.seen) == 9)
        other = await client.request(destination, get())
        assert other.status == 503 and "a probe is out" in reason(other)
        sick.release.set()
        assert (await probe).status == 200
        assert (await client.request(destination, get())).status == 200  # closed again
        assert len(sick.seen) == 10
    finally:
        await client.close()


async def test_a_server_with_another_identity_is_refused(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start
) -> None:
    impostor = await replicas("hello-1", identity=OTHER)
    client = await outbound(mesh, registry)
    expected = replace(impostor.address, identity=HELLO)  # who the table says it should be
    try:
        response = await client.request(target(expected), get(b"secret", method="POST"))
        assert response.status == 502
        assert "certificate" in reason(response) and "hello-1" in reason(response)
        assert impostor.seen == []  # nothing was sent to it
        ok = await client.request(target(impostor.address), get())  # expecting OTHER: fine
        assert ok.status == 200
    finally:
        await client.close()


async def test_an_endpoint_without_identity_is_not_sent_plaintext(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start
) -> None:
    replica = await replicas("hello-1")
    client = await outbound(mesh, registry)
    try:
        response = await client.request(target(replace(replica.address, identity=None)), get())
        assert response.status == 502 and "no identity" in reason(response)
        assert replica.seen == []
    finally:
        await client.close()


async def test_large_bodies_are_not_retried(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start, resetter: Resetter
) -> None:
    good = await replicas("good-1")
    refused = Address("down-1", "127.0.0.1", _closed_port(), HELLO)
    client = await outbound(mesh, registry)
    try:
        # a refused connection sent nothing: even a POST goes to the next replica ...
        small = await client.request(target(refused, good.address), get(b"x" * 1000, "POST"))
        assert small.status == 200
        # ... but not a body over 64 KiB
        again = target(refused, good.address, name="default/hello-00002")  # fresh loads
        big = await client.request(again, get(b"x" * 70_000, "POST"))
        assert big.status == 502 and "down-1" in reason(big)
        # nor an idempotent PUT over 64 KiB that met a reset
        third = target(resetter.address, good.address, name="default/hello-00003")
        put = await client.request(third, get(b"x" * 70_000, "PUT"))
        assert put.status == 502 and resetter.connections == 1
        assert len(good.seen) == 1
    finally:
        await client.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_no_endpoint_answers_503_at_once(mesh: Mesh, registry: CollectorRegistry) -> None:
    client = await outbound(mesh, registry)
    try:
        started = time.monotonic()
        response = await client.request(target(), get())
        assert time.monotonic() - started < 0.5
        assert response.status == 503
        assert response.header(b"content-type") == b"application/json"
        assert reason(response) == (
            "no ready endpoint for default/hello-00001: it has no ready replica"
        )
        assert client.pool.opened == 0
    finally:
        await client.close()


async def test_tries_time_out_and_the_total_bounds_them_all(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start
) -> None:
    hold = asyncio.Event()
    slow = [await replicas(f"slow-{i}", release=hold) for i in range(3)]
    settings = Settings(timeout=1.0, per_try_timeout=0.4)
    client = await outbound(mesh, registry)
    try:
        started = time.monotonic()
        response = await client.request(
            target(*(r.address for r in slow), settings=settings), get()
        )
        elapsed = time.monotonic() - started
        assert response.status == 504 and "did not answer in time" in reason(response)
        assert 1.0 <= elapsed < 4.0
        # three tries, each on another replica: 0.4 s, 0.4 s, then what is left (0.2 s)
        assert [len(r.seen) for r in slow] == [1, 1, 1]
    finally:
        hold.set()
        await client.close()


async def test_metrics_count_final_responses_with_linkerd_labels(
    mesh: Mesh, registry: CollectorRegistry, replicas: Start
) -> None:
    replica = await replicas("hello-1")
    client = await outbound(mesh, registry)
    try:
        for _ in range(3):
            await client.request(target(replica.address), get())
        await client.request(target(), get())
    finally:
        await client.close()
    text = generate_latest(registry).decode()
    assert text.count("# TYPE response_total counter") == 1
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    base = {
        "namespace": "default",
        "function": "hello",
        "revision": "hello-00001",
        "direction": "outbound",
        "tls": "true",
    }

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted({**base, **labels}.items()))))

    assert value("request_total", server_id=HELLO) == 4 - 1
    assert value("request_total", server_id="") == 1
    ok = {"server_id": HELLO, "status_code": "200"}
    assert value("response_total", **ok, classification="success") == 3
    failed = {"server_id": "", "status_code": "503", "classification": "failure"}
    assert value("response_total", **failed) == 1
    assert value("response_latency_ms_bucket", **ok, le="+Inf") == 3
    assert value("response_latency_ms_count", **ok) == 3
