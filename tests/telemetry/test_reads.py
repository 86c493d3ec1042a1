"""The hub's read API: golden metrics and tap sessions, over real mTLS, for readers only.

``HubClient`` (the API's reader) and ``HttpMetrics`` (the controller's ``Metrics``) talk
to a real hub listener; the handler's own rules (who may read, sessions nobody polls)
are checked on a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import ssl
from collections.abc import AsyncIterator

import pytest

from fnmesh.platform.http import HttpServer, Peer, Request, serve
from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    TlsCredentials,
    client_context,
    component_identity,
    identity_name,
    make_csr,
    server_context,
)
from fnmesh.platform.mesh.identity.csr import check_csr
from fnmesh.platform.telemetry.client import HttpMetrics, HubClient
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.reader import TelemetryReader, TelemetryUnavailable
from fnmesh.platform.telemetry.reads import ReadHandler
from fnmesh.platform.telemetry.report import parse_report
from fnmesh.platform.telemetry.server import StatsHandler
from fnmesh.platform.telemetry.tap import TapFilter
from fnmesh.platform.telemetry.wire import WireError, golden_from_wire, golden_to_wire

HUB = component_identity("telemetry")
API = component_identity("api")
OPERATOR = component_identity("operator")
READERS = frozenset({API, OPERATOR})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Authority:
    def __init__(self) -> None:
        self.ca = CertificateAuthority.create(datetime.datetime.now(datetime.UTC))

    def credentials(self, identity: str) -> TlsCredentials:
        request = make_csr(identity)
        issued = self.ca.issuer.sign(
            check_csr(request.csr_pem, identity), identity, datetime.datetime.now(datetime.UTC)
        )
        return TlsCredentials(issued.chain_pem, request.key_pem)

    def client(self, identity: str) -> ssl.SSLContext:
        return client_context(self.ca.trust_anchors_pem, self.credentials(identity))

    def server(self, identity: str) -> ssl.SSLContext:
        return server_context(self.ca.trust_anchors_pem, self.credentials(identity))


def report(**extra: object) -> dict[str, object]:
    return {
        "namespace": "default",
        "function": "hello",
        "revision": "hello-00001",
        "replica": "hello-00001-abc",
        "requests": 20,
        "success": 19,
        "failure": 1,
        "latencyBuckets": {"5": 10, "10": 10},
        **extra,
    }


@contextlib.asynccontextmanager
async def running_hub(
    authority: Authority, hub: TelemetryHub
) -> AsyncIterator[tuple[HttpServer, ReadHandler]]:
    reads = ReadHandler(hub, READERS)
    server = await serve(StatsHandler(hub, reads=reads), "127.0.0.1", 0, ssl=authority.server(HUB))
    try:
        yield server, reads
    finally:
        await server.close(0.5)
        await reads.close()


async def test_the_api_reads_golden_metrics_and_taps_over_mtls() -> None:
    authority, hub = Authority(), TelemetryHub()
    hub.ingest(parse_report(report()))
    async with running_hub(authority, hub) as (server, reads):
        url = f"https://127.0.0.1:{server.port}"
        client: TelemetryReader = HubClient(url, tls=authority.client(API), server_identity=HUB)
        assert isinstance(client, HubClient)
        golden = await client.read_golden("default", "hello-00001", 60)
        assert golden == hub.golden("default", "hello-00001", 60)
        assert golden is not None and golden.requests == 20
        assert await client.read_golden("default", "nobody-00001", 60) is None

        async with client.tap(TapFilter("default", "hello", method="POST")) as feed:
            assert len(reads.leases) == 1
            # the reporter learns the filter from the hub's reply, then sends events
            reply = hub.ingest(parse_report(report()))
            assert reply == {"tap": {"filters": {"method": "POST"}}}
            event = {"method": "POST", "path": "/x", "revision": "hello-00001"}
            hub.ingest(parse_report(report(tap=[{"method": "GET", "path": "/"}, event])))
            assert await feed.next(5) == [event]  # filtered at the hub too
            assert await feed.next(0.05) == []  # nothing more: an empty poll, no error
        assert reads.leases == {}  # the session ended with the context
        assert hub.ingest(parse_report(report())) == {"tap": None}
        await client.close()


async def test_only_the_platforms_readers_may_read() -> None:
    authority, hub = Authority(), TelemetryHub()
    async with running_hub(authority, hub) as (server, _):
        url = f"https://127.0.0.1:{server.port}"
        for stranger in (component_identity("gateway"), identity_name("hello", "default")):
            client = HubClient(url, tls=authority.client(stranger), server_identity=HUB)
            with pytest.raises(TelemetryUnavailable, match=r"403.*may not read telemetry"):
                await client.read_golden("default", "hello-00001", 60)
            await client.close()
        impostor = HubClient(
            url, tls=authority.client(API), server_identity=component_identity("autoscaler")
        )
        with pytest.raises(TelemetryUnavailable, match="cannot be reached"):
            await impostor.read_golden("default", "hello-00001", 60)  # not the hub's name
        await impostor.close()


async def test_the_controllers_metrics_read_the_hub_and_back_off_when_it_is_gone() -> None:
    authority, hub = Authority(), TelemetryHub()
    hub.ingest(parse_report(report()))
    clock = Clock()
    async with running_hub(authority, hub) as (server, _):
        metrics = HttpMetrics(
            f"https://127.0.0.1:{server.port}",
            tls=authority.client(OPERATOR),
            server_identity=HUB,
            clock=clock,
        )
        golden = await asyncio.to_thread(metrics.golden, "default", "hello-00001", 30)
        assert golden is not None and golden.success_rate == pytest.approx(0.95)
        assert golden.p99_ms is not None and 5 < golden.p99_ms <= 10
        port = server.port
    gone = HttpMetrics(
        f"https://127.0.0.1:{port}",
        tls=authority.client(OPERATOR),
        server_identity=HUB,
        clock=clock,
    )
    assert await asyncio.to_thread(gone.golden, "default", "hello-00001", 30) is None
    assert gone._quiet_until == clock.now + gone.backoff  # no second try for a while


async def test_a_tap_session_nobody_polls_ends_and_reporters_stop_sending() -> None:
    clock = Clock()
    hub = TelemetryHub(clock=clock)
    reads = ReadHandler(hub, READERS, idle=60, clock=clock)
    api = Peer(("127.0.0.1", 1), True, API)
    body = json.dumps({"namespace": "default", "function": "hello"}).encode()
    opened = await reads(Request("POST", b"/v1/taps", [], body), api)
    session = json.loads(opened.body)["session"]
    assert hub.ingest(parse_report(report()))["tap"] is not None
    clock.now += 30
    polled = await reads(Request("GET", f"/v1/taps/{session}?wait=0".encode(), []), api)
    assert json.loads(polled.body) == {"events": [], "dropped": 0}
    clock.now += 61
    assert reads.expire() == 1
    assert hub.ingest(parse_report(report())) == {"tap": None}
    gone = await reads(Request("GET", f"/v1/taps/{session}?wait=0".encode(), []), api)
    assert gone.status == 404


@pytest.mark.parametrize(
    ("target", "body", "why"),
    [
        (b"/v1/golden/default", b"", "ask for /v1/golden/<namespace>/<revision>"),
        (b"/v1/golden/default/hello-00001?window=0", b"", "window must be between 1 and 600"),
        (b"/v1/golden/default/hello-00001?window=x", b"", "window must be a number"),
        (b"/v1/taps", b'{"namespace": "Default"}', "namespace 'Default' is not a DNS-1123"),
        (b"/v1/taps", b"[]", "the body must be a JSON object"),
    ],
)
async def test_bad_reads_name_what_is_wrong(target: bytes, body: bytes, why: str) -> None:
    reads = ReadHandler(TelemetryHub(), READERS)
    method = "POST" if body else "GET"
    answer = await reads(Request(method, target, [], body), Peer(None, True, OPERATOR))
    assert answer.status == 400
    assert why in json.loads(answer.body)["error"]


def test_golden_metrics_survive_the_wire() -> None:
    hub = TelemetryHub(clock=Clock())
    hub.ingest(parse_report(report()))
    golden = hub.golden("default", "hello-00001", 10)
    assert golden_from_wire(json.loads(json.dumps(golden_to_wire(golden)))) == golden
    assert golden_from_wire(None) is None
    with pytest.raises(WireError, match=r"golden\.requests"):
        golden_from_wire({"requests": -1, "success": 0, "failure": 0, "seconds": 1})
