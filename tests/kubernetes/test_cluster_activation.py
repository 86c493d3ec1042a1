"""Scale from zero across processes: gateway -> activator -> autoscaler, over real mTLS.

The gateway's admission asks the activator; the activator holds the request, pokes the
autoscaler through its demand listener, and grants the request once a replica is ready.
Route tables are fakes the test moves; everything between them is the real wire.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from fnmesh.activator import Activator, ActivatorConfig, Refused
from fnmesh.platform.cluster.admission import AdmissionHandler, RemoteAdmission, parse_admit
from fnmesh.platform.cluster.demand import DemandHandler, RemoteDemand, parse_call
from fnmesh.platform.http import HttpServer, Peer, Request, serve
from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    TlsCredentials,
    client_context,
    component_identity,
    make_csr,
    server_context,
)
from fnmesh.platform.mesh.identity.csr import load_csr

NS, FN, REV = "default", "hello", "hello-00001"
GATEWAY = component_identity("gateway")
ACTIVATOR = component_identity("activator")
AUTOSCALER = component_identity("autoscaler")


async def until(what: str, check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if found := check():
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Mesh:
    """Certificates of the platform's components, from one authority."""

    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)
        self.authority = CertificateAuthority.create(self.now)
        self.anchors = self.authority.trust_anchors_pem

    def credentials(self, identity: str) -> TlsCredentials:
        key = make_csr(identity)
        issued = self.authority.issuer.sign(load_csr(key.csr_pem), identity, self.now)
        return TlsCredentials(issued.chain_pem, key.key_pem)

    def server(self, identity: str) -> ssl.SSLContext:
        return server_context(self.anchors, self.credentials(identity))

    def client(self, identity: str) -> ssl.SSLContext:
        return client_context(self.anchors, self.credentials(identity))


class Routes:
    """A route table the test moves: ready replicas per revision, and listeners."""

    def __init__(self) -> None:
        self.ready: dict[tuple[str, str, str], int] = {}
        self.listeners: list[Callable[[str, str], None]] = []

    def ready_replicas(self, namespace: str, function: str, revision: str) -> int:
        return self.ready.get((namespace, function, revision), 0)

    def listen(self, callback: Callable[[str, str], None]) -> None:
        self.listeners.append(callback)

    def set_ready(self, count: int) -> None:
        self.ready[NS, FN, REV] = count
        for listener in self.listeners:
            listener(NS, FN)


@dataclass
class Autoscaler:
    """What the autoscaler's demand listener was told."""

    records: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    pokes: list[tuple[str, str]] = field(default_factory=list)

    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None:
        self.records.append((namespace, revision, source, concurrency, rps))

    def poke(self, namespace: str, revision: str) -> None:
        self.pokes.append((namespace, revision))


class Platform:
    def __init__(self, mesh: Mesh, config: ActivatorConfig) -> None:
        self.mesh = mesh
        self.autoscaler = Autoscaler()
        self.activator_routes = Routes()
        self.gateway_routes = Routes()
        self.config = config
        self.servers: list[HttpServer] = []

    async def start(self) -> None:
        mesh = self.mesh
        demand = DemandHandler(self.autoscaler, frozenset({ACTIVATOR}))
        scaler = await serve(demand, "127.0.0.1", 0, ssl=mesh.server(AUTOSCALER))
        self.demand = RemoteDemand(
            f"https://127.0.0.1:{scaler.port}",
            tls=mesh.client(ACTIVATOR),
            server_identity=AUTOSCALER,
        )
        self.activator = Activator(self.activator_routes, self.demand, self.config)
        self.activator_routes.listen(self.activator.refresh)
        self.handler = AdmissionHandler(self.activator, frozenset({GATEWAY}))
        front = await serve(self.handler, "127.0.0.1", 0, ssl=mesh.server(ACTIVATOR))
        self.servers = [scaler, front]
        self.activator_url = f"https://127.0.0.1:{front.port}"
        self.admission = self.remote(GATEWAY)
        self.demand.start()
        self.handler.start(every=0.05)

    def remote(self, identity: str) -> RemoteAdmission:
        return RemoteAdmission(
            self.activator_url,
            tls=self.mesh.client(identity),
            server_identity=ACTIVATOR,
            routes=self.gateway_routes,
            settle=5.0,
        )

    async def close(self) -> None:
        await self.admission.close()
        await self.handler.close()
        await self.demand.close()
        for server in self.servers:
            await server.close(1.0)


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    return Mesh()


async def running(mesh: Mesh, **config: Any) -> Platform:
    platform = Platform(mesh, ActivatorConfig(**config))
    await platform.start()
    return platform


@pytest.fixture
async def platform(mesh: Mesh) -> AsyncIterator[Platform]:
    started = await running(mesh, activation_deadline=10.0)
    yield started
    await started.close()


async def test_a_request_at_zero_waits_pokes_and_goes_on_once_ready(platform: Platform) -> None:
    entered = asyncio.Event()
    done = asyncio.Event()

    async def request() -> None:
        async with platform.admission.admit(NS, FN, REV, 1):
            entered.set()
            await done.wait()

    task = asyncio.create_task(request())
    await until("the autoscaler to be poked", lambda: platform.autoscaler.pokes)
    assert platform.autoscaler.pokes == [(NS, REV)]
    (record,) = platform.autoscaler.records[:1]
    assert record[:3] == (NS, REV, "activator") and record[3] >= 1
    assert not platform.handler.leases and not entered.is_set()

    platform.activator_routes.set_ready(1)  # the activator sees the replica first
    await until("the slot to be granted", lambda: platform.handler.leases)
    assert not entered.is_set()  # the gateway's own routes do not have it yet
    platform.gateway_routes.set_ready(1)
    await asyncio.wait_for(entered.wait(), 5)

    done.set()
    await task
    await until("the slot to be released", lambda: not platform.handler.leases)


async def test_capacity_is_the_activators_across_gateways(platform: Platform) -> None:
    platform.activator_routes.set_ready(1)
    platform.gateway_routes.set_ready(1)
    other_gateway = platform.remote(GATEWAY)  # a second gateway replica
    first, second = asyncio.Event(), asyncio.Event()
    done = asyncio.Event()

    async def request(admission: RemoteAdmission, entered: asyncio.Event) -> None:
        async with admission.admit(NS, FN, REV, 1):  # one slot: concurrency 1, 1 replica
            entered.set()
            await done.wait()

    one = asyncio.create_task(request(platform.admission, first))
    await asyncio.wait_for(first.wait(), 5)
    two = asyncio.create_task(request(other_gateway, second))
    await until("the second request to wait", lambda: platform.activator.held(NS, REV) == 1)
    assert not second.is_set()
    done.set()
    await asyncio.wait_for(second.wait(), 5)
    await asyncio.gather(one, two)
    await other_gateway.close()


async def test_the_activators_refusals_reach_the_gateway(mesh: Mesh) -> None:
    platform = await running(mesh, activation_deadline=0.3, queue_depth=1)
    try:
        waiting = asyncio.create_task(platform.admission.admit(NS, FN, REV, 1).__aenter__())
        await until("one request to wait", lambda: platform.activator.held(NS, REV) == 1)
        with pytest.raises(Refused) as full:
            async with platform.admission.admit(NS, FN, REV, 1):
                pass
        assert full.value.status == 503 and "waiting for capacity" in full.value.reason
        with pytest.raises(Refused) as late:
            await waiting
        assert late.value.status == 504 and "activation deadline" in late.value.reason
    finally:
        await platform.close()


async def test_only_the_gateway_may_ask(platform: Platform) -> None:
    stranger = platform.remote(AUTOSCALER)
    try:
        with pytest.raises(Refused, match="may not ask") as refused:
            async with stranger.admit(NS, FN, REV, 1):
                pass
        assert refused.value.status == 503
    finally:
        await stranger.close()


async def test_an_unreachable_activator_is_a_503(platform: Platform, mesh: Mesh) -> None:
    gone = RemoteAdmission(
        "https://127.0.0.1:1",
        tls=mesh.client(GATEWAY),
        server_identity=ACTIVATOR,
        routes=Routes(),
    )
    with pytest.raises(Refused, match="cannot be reached") as refused:
        async with gone.admit(NS, FN, REV, 1):
            pass
    assert refused.value.status == 503
    await gone.close()


# -- leases and bodies, without the network ------------------------------------------------


class Slots:
    """An activator with a fixed number of slots: admit takes one, exit gives it back."""

    def __init__(self, slots: int) -> None:
        self.free = slots

    def admit(self, namespace: str, function: str, revision: str, concurrency: int) -> Any:
        outer = self

        class Slot:
            async def __aenter__(self) -> None:
                if outer.free == 0:
                    raise Refused(503, "no slot")
                outer.free -= 1

            async def __aexit__(self, *exc: object) -> None:
                outer.free += 1

        return Slot()


def admit_request(**body: Any) -> Request:
    payload = {"namespace": NS, "function": FN, "revision": REV, "concurrency": 1, **body}
    return Request("POST", b"/v1/admit", [], json.dumps(payload).encode())


GATEWAY_PEER = Peer(("10.0.0.1", 5000), True, GATEWAY)


async def test_a_lease_never_released_ends_by_itself() -> None:
    now = [100.0]
    slots = Slots(1)
    handler = AdmissionHandler(slots, frozenset({GATEWAY}), clock=lambda: now[0], grace=10.0)
    granted = await handler(admit_request(timeout=30), GATEWAY_PEER)
    assert granted.status == 200 and slots.free == 0
    refused = await handler(admit_request(timeout=30), GATEWAY_PEER)
    assert (refused.status, json.loads(refused.body)) == (503, {"reason": "no slot"})
    now[0] += 39.9
    assert await handler.expire() == 0
    now[0] += 0.2
    assert await handler.expire() == 1
    assert slots.free == 1 and not handler.leases
    lease = json.loads(granted.body)["lease"]
    release = Request("POST", b"/v1/release", [], json.dumps({"lease": lease}).encode())
    assert (await handler(release, GATEWAY_PEER)).status == 404  # it ended already


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({}, None),
        ({"timeout": 0}, "timeout must be seconds above 0"),
        ({"concurrency": -1}, "concurrency must be a whole number"),
        ({"concurrency": True}, "concurrency must be a whole number"),
        ({"namespace": "Not_A_Name"}, "namespace 'Not_A_Name' is not a DNS-1123 label"),
        ({"revision": None}, "revision is required"),
    ],
)
def test_admit_bodies(body: dict[str, Any], why: str | None) -> None:
    payload = {"namespace": NS, "function": FN, "revision": REV, "concurrency": 2, **body}
    parsed = parse_admit(payload)
    if why is None:
        assert not isinstance(parsed, str) and parsed.concurrency == 2 and parsed.timeout == 30
    else:
        assert isinstance(parsed, str) and why in parsed


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"namespace": NS, "revision": REV, "poke": True}, (NS, REV, {"poke": True})),
        (
            {"namespace": NS, "revision": REV, "source": "activator", "concurrency": 2, "rps": 1},
            (NS, REV, {"source": "activator", "concurrency": 2.0, "rps": 1.0}),
        ),
        (
            {"namespace": NS, "revision": REV, "source": "a", "concurrency": -1, "rps": 0},
            "concurrency",
        ),
        ({"namespace": NS, "revision": REV, "concurrency": 1, "rps": 0}, "source must name"),
        ({"namespace": NS, "revision": "x/y", "poke": True}, "revision 'x/y'"),
        ([], "JSON object"),
    ],
)
def test_demand_bodies(body: Any, expected: Any) -> None:
    parsed = parse_call(body)
    if isinstance(expected, str):
        assert isinstance(parsed, str) and expected in parsed
    else:
        assert parsed == expected


async def test_demand_comes_from_the_activator_only() -> None:
    sink = Autoscaler()
    handler = DemandHandler(sink, frozenset({ACTIVATOR}))
    body = json.dumps({"namespace": NS, "revision": REV, "poke": True}).encode()
    request = Request("POST", b"/v1/demand", [], body)
    assert (await handler(request, GATEWAY_PEER)).status == 403
    assert (await handler(request, Peer(None, True, ACTIVATOR))).status == 200
    assert sink.pokes == [(NS, REV)]
