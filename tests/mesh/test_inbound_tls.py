"""The inbound listener over real sockets: mTLS or nothing, refusals counted and logged."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from proxykit import CALLER, HELLO, Mesh, call, wait_until

from fnmesh.platform.http import HttpServer, Peer, Request, Response, UpstreamError
from fnmesh.platform.mesh.identity import client_context
from fnmesh.platform.mesh.inbound.tls import RefusalLog, TlsListener, refusal_reason, serve_mtls
from fnmesh.platform.mesh.metrics.proxy import ProxyMetrics


async def whoami(request: Request, peer: Peer) -> Response:
    return Response(200, [], f"{peer.identity} tls={peer.tls}".encode())


@dataclass
class Listening:
    mesh: Mesh
    server: HttpServer
    listener: TlsListener
    metrics: ProxyMetrics


@pytest.fixture
async def listening() -> AsyncIterator[Listening]:
    mesh = Mesh()
    metrics = ProxyMetrics({"namespace": "n", "function": "f", "revision": "r"})
    server, listener = await serve_mtls(
        whoami, "127.0.0.1", 0, context=mesh.server(HELLO), counter=metrics
    )
    try:
        yield Listening(mesh, server, listener, metrics)
    finally:
        await server.close(1.0)


async def test_a_mesh_client_is_served_with_its_identity(listening: Listening) -> None:
    answer = await call(listening.server.port, listening.mesh.client(CALLER))
    assert (answer.status, answer.body) == (200, f"{CALLER} tls=True".encode())
    assert listening.metrics.tcp_opened == 1
    assert listening.metrics.handshake_failures == {}


async def test_a_client_must_check_it_reached_the_right_identity(listening: Listening) -> None:
    with pytest.raises(UpstreamError, match=r"certificate|hostname|match"):
        await call(listening.server.port, listening.mesh.client(CALLER), server_hostname=CALLER)


async def _plaintext(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nhost: hello\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_plaintext_is_refused_at_the_handshake_and_logged_once_per_address(
    listening: Listening, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="fnmesh.mesh.inbound")
    for _ in range(3):
        assert await _plaintext(listening.server.port) == b"", "no HTTP answer in plaintext"
    failures = listening.metrics.handshake_failures
    await wait_until("three refusals counted", lambda: failures.get("plaintext") == 3)
    refusals = [r for r in caplog.records if "refused a connection" in r.getMessage()]
    assert len(refusals) == 1
    assert "127.0.0.1" in refusals[0].getMessage() and "plaintext" in refusals[0].getMessage()
    assert listening.metrics.tcp_opened == 3


async def test_a_client_without_a_certificate_is_refused(listening: Listening) -> None:
    anonymous = client_context(listening.mesh.anchors)
    with pytest.raises(UpstreamError):
        await call(listening.server.port, anonymous)
    failures = listening.metrics.handshake_failures
    await wait_until("the refusal counted", lambda: failures == {"no_client_certificate": 1})


async def test_a_certificate_from_another_authority_is_refused(listening: Listening) -> None:
    foreign = Mesh().credentials(CALLER)  # same identity name, another trust anchor
    context = client_context(listening.mesh.anchors, foreign)
    with pytest.raises(UpstreamError):
        await call(listening.server.port, context)
    failures = listening.metrics.handshake_failures
    await wait_until("the refusal counted", lambda: failures == {"untrusted_certificate": 1})
    answer = await call(listening.server.port, listening.mesh.client(CALLER))
    assert answer.status == 200, "the listener keeps serving mesh clients"


async def test_a_stalled_handshake_is_dropped(listening: Listening) -> None:
    server, _ = await serve_mtls(
        whoami,
        "127.0.0.1",
        0,
        context=listening.mesh.server(HELLO),
        counter=listening.metrics,
        handshake_timeout=0.2,
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        failures = listening.metrics.handshake_failures
        await wait_until("the timeout counted", lambda: failures == {"timeout": 1})
    finally:
        await server.close(1.0)


def test_the_listener_serves_on_uvloop_with_clients_in_the_same_loop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[int]:
        mesh = Mesh()
        metrics = ProxyMetrics({})
        server, _ = await serve_mtls(
            whoami, "127.0.0.1", 0, context=mesh.server(HELLO), counter=metrics
        )
        try:
            context = mesh.client(CALLER)
            answers = await asyncio.gather(*(call(server.port, context) for _ in range(8)))
            return [answer.status for answer in answers]
        finally:
            await server.close(1.0)

    assert uvloop.run(main()) == [200] * 8


def test_refusal_reasons_are_a_small_set() -> None:
    plaintext = ssl.SSLError(1, "[SSL: HTTP_REQUEST] http request")
    plaintext.reason = "HTTP_REQUEST"
    assert refusal_reason(plaintext) == "plaintext"
    assert refusal_reason(ssl.SSLCertVerificationError("x")) == "untrusted_certificate"
    assert refusal_reason(ConnectionResetError()) == "closed"
    assert refusal_reason(ValueError()) == "other"


def test_the_refusal_log_speaks_once_per_address_per_period() -> None:
    log = RefusalLog(every=60.0, capacity=4)
    assert log.should_log("10.0.0.1", 0.0) == 0
    assert log.should_log("10.0.0.1", 1.0) is None
    assert log.should_log("10.0.0.1", 2.0) is None
    assert log.should_log("10.0.0.2", 2.0) == 0, "another address has its own budget"
    assert log.should_log("10.0.0.1", 61.0) == 2, "then says how many went unlogged"
    for n in range(10):  # many addresses: the table stays bounded
        log.should_log(f"10.1.0.{n}", 62.0)
    assert len(log._seen) <= 4
