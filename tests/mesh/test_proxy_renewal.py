"""Certificate renewal under a serving proxy: new handshakes get the new certificate, open
connections keep working, the expiry gauge follows. The identity client and service run
on fake time that starts 17 hours in the past, so every certificate issued up to 70 % of
a day later is valid by the real clock the handshakes read."""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta
from pathlib import Path

from identitykit import FakeTime
from proxykit import CALLER, Mesh, Upstream, make_config, real_now, wait_until, write_policy

from fnmesh.platform.http import ConnectionPool, Request
from fnmesh.platform.mesh.identity import (
    Certifier,
    IdentityClient,
    OneTimeTokenVerifier,
    TokenIssuer,
    identity_name,
)
from fnmesh.platform.mesh.identity.endpoint import HttpIdentityEndpoint
from fnmesh.platform.mesh.identity.service import IdentityService
from fnmesh.platform.mesh.proxy.replica import ReplicaProxy

HELLO = identity_name("hello", "default")


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /kept HTTP/1.1\r\nhost: hello\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return head.split(b" ")[1]


def _served_certificate(writer: asyncio.StreamWriter) -> bytes:
    ssl_object = writer.get_extra_info("ssl_object")
    assert ssl_object is not None
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return bytes(der)


async def _connect(
    port: int, context: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=HELLO)


async def test_renewal_keeps_serving(tmp_path: Path) -> None:
    mesh = Mesh()
    tokens = TokenIssuer()
    time = FakeTime(real_now() - timedelta(hours=17))
    service = IdentityService(
        Certifier(mesh.authority, OneTimeTokenVerifier(tokens, clock=time.now)),
        clock=time.now,
    )
    await service.start()
    upstream = await Upstream().start()
    policy = tmp_path / "policy.json"
    write_policy(policy, allow=(CALLER,))
    endpoint = HttpIdentityEndpoint(service.url)
    identity = IdentityClient(
        HELLO,
        trust_anchors_pem=mesh.anchors,
        endpoint=endpoint,
        credential=tokens.mint(HELLO, time.now()),
        clock=time.now,
        sleep=time.sleep,
    )
    await identity.start()
    config = make_config(
        upstream_port=upstream.port, policy_file=policy, trust_anchors_pem=mesh.anchors
    )
    proxy = ReplicaProxy(config, identity)
    await proxy.start()
    context = mesh.client(CALLER)
    try:
        first = identity.certificate
        assert first is not None
        old_reader, old_writer = await _connect(proxy.inbound_port, context)
        assert await _get(old_reader, old_writer) == b"200"
        before = _served_certificate(old_writer)

        await wait_until("the renewal loop asleep", lambda: time.sleeping == 1)
        time.advance_to(first.not_before + (first.not_after - first.not_before) * 0.7)
        await wait_until("a renewed certificate", lambda: identity.certificates_issued == 2)
        second = identity.certificate
        assert second is not None and second.certificate != first.certificate

        new_reader, new_writer = await _connect(proxy.inbound_port, context)
        assert await _get(new_reader, new_writer) == b"200"
        assert _served_certificate(new_writer) != before, "new handshakes get the new one"
        assert await _get(old_reader, old_writer) == b"200", "open connections keep working"
        assert _served_certificate(old_writer) == before
        for writer in (old_writer, new_writer):
            writer.close()

        pool = ConnectionPool()
        metrics = await pool.request(
            "127.0.0.1", proxy.admin_port, Request("GET", b"/metrics", []), timeout=5
        )
        await pool.close()
        gauge = next(
            line
            for line in metrics.body.decode().splitlines()
            if line.startswith("identity_cert_expiration_timestamp_seconds{")
        )
        assert float(gauge.rsplit(" ", 1)[1]) == second.not_after.timestamp()
    finally:
        await proxy.stop()
        await identity.close()
        await endpoint.close()
        await upstream.close()
        await service.close()
