"""The burst-capacity choice across processes, and load relayed to the autoscaler.

autoscaler (``GET /v1/burst``) -> activator (``BurstFeed``, its ``BurstCapacity``; serves
the same list) -> gateway (``RemoteAdmission.through``), over real mTLS; and the hub's
and activator's calls reaching the autoscaler's demand listener in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from test_cluster_activation import ACTIVATOR, AUTOSCALER, GATEWAY, Autoscaler, Mesh, Routes

from fnmesh.activator import Activator, ActivatorConfig
from fnmesh.platform.cluster.admission import AdmissionHandler, RemoteAdmission
from fnmesh.platform.cluster.burst import BurstFeed, BurstHandler, Short, parse_short
from fnmesh.platform.cluster.demand import DemandHandler, RemoteDemand
from fnmesh.platform.http import HttpServer, Peer, Request, serve
from fnmesh.platform.mesh.identity import component_identity

HUB = component_identity("telemetry")
SHORT, SPARE = ("default", "short-00001"), ("default", "spare-00001")


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    return Mesh()


@contextlib.asynccontextmanager
async def chain(mesh: Mesh, short: Short) -> AsyncIterator[tuple[BurstFeed, RemoteAdmission]]:
    """The autoscaler's list, the activator polling it, the gateway polling the activator."""
    servers: list[HttpServer] = []
    scaler = await serve(
        BurstHandler(lambda: short, frozenset({ACTIVATOR})),
        "127.0.0.1",
        0,
        ssl=mesh.server(AUTOSCALER),
    )
    servers.append(scaler)
    feed = BurstFeed(
        f"https://127.0.0.1:{scaler.port}",
        tls=mesh.client(ACTIVATOR),
        server_identity=AUTOSCALER,
    )
    activator = Activator(Routes(), Autoscaler(), ActivatorConfig(), burst=feed)
    handler = AdmissionHandler(activator, frozenset({GATEWAY}), burst=feed.short)
    front = await serve(handler, "127.0.0.1", 0, ssl=mesh.server(ACTIVATOR))
    servers.append(front)
    url = f"https://127.0.0.1:{front.port}"
    admission = RemoteAdmission(
        url,
        tls=mesh.client(GATEWAY),
        server_identity=ACTIVATOR,
        routes=Routes(),
        burst=BurstFeed(url, tls=mesh.client(GATEWAY), server_identity=ACTIVATOR),
    )
    try:
        yield feed, admission
    finally:
        await admission.close()
        await feed.close()
        for server in servers:
            await server.close(0.5)


async def test_a_revision_short_of_burst_capacity_goes_through_the_activator(
    mesh: Mesh,
) -> None:
    short: Short = {SHORT: -12.5}
    async with chain(mesh, short) as (feed, admission):
        assert admission.burst is not None
        assert admission.through(*SHORT, 3) is False  # nothing read yet: straight on
        assert await feed.refresh() and await admission.burst.refresh()
        assert admission.through(*SHORT, 3) is True
        assert admission.through(*SPARE, 3) is False
        assert admission.through(*SPARE, 0) is True  # no replica: always held
        assert feed.excess_burst_capacity(*SHORT) == -12.5
        short.clear()  # the autoscaler scaled up: capacity is spare again
        assert await feed.refresh() and await admission.burst.refresh()
        assert admission.through(*SHORT, 3) is False


async def test_only_the_activator_reads_the_autoscalers_list(mesh: Mesh) -> None:
    server = await serve(
        BurstHandler(lambda: {SHORT: -1.0}, frozenset({ACTIVATOR})),
        "127.0.0.1",
        0,
        ssl=mesh.server(AUTOSCALER),
    )
    feed = BurstFeed(
        f"https://127.0.0.1:{server.port}", tls=mesh.client(GATEWAY), server_identity=AUTOSCALER
    )
    try:
        assert await feed.refresh() is False
        assert feed.excess_burst_capacity(*SHORT) is None
    finally:
        await feed.close()
        await server.close(0.5)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"short": []}, {}),
        (
            {"short": [{"namespace": "a", "revision": "b-00001", "excessBurstCapacity": -2}]},
            {("a", "b-00001"): -2.0},
        ),
        ({"short": [{"namespace": "A", "revision": "b", "excessBurstCapacity": 1}]}, "short[0]"),
        ({"short": [{"namespace": "a", "revision": "b", "excessBurstCapacity": "x"}]}, "number"),
        ([], "a list 'short'"),
    ],
)
def test_burst_lists(body: object, expected: object) -> None:
    found = parse_short(body)
    if isinstance(expected, str):
        assert isinstance(found, str) and expected in found
    else:
        assert found == expected


async def test_the_hubs_load_reaches_the_autoscaler_in_batches(mesh: Mesh) -> None:
    autoscaler = Autoscaler()
    handler = DemandHandler(autoscaler, frozenset({ACTIVATOR, HUB}))
    server = await serve(handler, "127.0.0.1", 0, ssl=mesh.server(AUTOSCALER))
    relay = RemoteDemand(
        f"https://127.0.0.1:{server.port}", tls=mesh.client(HUB), server_identity=AUTOSCALER
    )
    try:
        for i in range(50):  # a second's reports of 50 replicas, queued before sending
            relay.record("default", "hello-00001", f"hello-00001-{i}", 1.0, 10.0)
        relay.poke("default", "hello-00001")
        relay.start()
        deadline = asyncio.get_running_loop().time() + 5
        while len(autoscaler.records) < 50 or not autoscaler.pokes:
            assert asyncio.get_running_loop().time() < deadline, autoscaler
            await asyncio.sleep(0.01)
        assert relay.sent == 1  # the 51 calls queued together went as one batch
        assert [r[2] for r in autoscaler.records] == [f"hello-00001-{i}" for i in range(50)]
    finally:
        await relay.close()
        await server.close(0.5)


async def test_a_bad_call_in_a_batch_is_named() -> None:
    handler = DemandHandler(Autoscaler(), frozenset({HUB}))
    good = {"namespace": "a", "revision": "b", "source": "r", "concurrency": 1, "rps": 1}
    body = json.dumps({"calls": [good, {"namespace": "a", "revision": "b", "rps": -1}]})
    answer = await handler(Request("POST", b"/v1/demand", [], body.encode()), Peer(None, True, HUB))
    assert answer.status == 400
    assert json.loads(answer.body)["error"].startswith("calls[1]: ")
