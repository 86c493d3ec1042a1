"""A workload's certificate over its lifetime: first issue, renewal at 70 %, SSL contexts.

The clocks are fake but the TLS is real, so fake time starts 17 hours in the past: every
certificate issued up to 70 % of a day later is valid by the real clock OpenSSL reads.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from identitykit import (
    GATEWAY,
    HELLO,
    EchoServer,
    FakeTime,
    close_writer,
    exchange,
    pem_to_der,
    real_now,
    start_echo_server,
    wait_until,
)

from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    Certifier,
    CertifyRequest,
    CertifyResponse,
    HttpIdentityEndpoint,
    IdentityClient,
    IdentityRefused,
    InProcessEndpoint,
    OneTimeTokenVerifier,
    RenewalPolicy,
    TokenIssuer,
    Validity,
)
from fnmesh.platform.mesh.identity.service import IdentityService


@dataclass
class Mesh:
    time: FakeTime
    authority: CertificateAuthority
    tokens: TokenIssuer
    service: IdentityService

    def client(self, identity: str) -> IdentityClient:
        return IdentityClient(
            identity,
            trust_anchors_pem=self.authority.trust_anchors_pem,
            endpoint=HttpIdentityEndpoint(self.service.url),
            credential=self.tokens.mint(identity, self.time.now()),
            clock=self.time.now,
            sleep=self.time.sleep,
        )


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    time = FakeTime(real_now() - timedelta(hours=17))
    authority = CertificateAuthority.create(time.now())
    tokens = TokenIssuer()
    verifier = OneTimeTokenVerifier(tokens, clock=time.now)
    service = IdentityService(Certifier(authority, verifier), clock=time.now, sleep=time.sleep)
    await service.start()
    try:
        yield Mesh(time, authority, tokens, service)
    finally:
        await service.close()


def presented_certificate(writer: asyncio.StreamWriter) -> bytes:
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    assert isinstance(der, bytes)
    return der


async def connect(
    echo: EchoServer, client: IdentityClient, expected: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1", echo.port, ssl=client.client_context(), server_hostname=expected
    )


async def test_contexts_need_a_certificate_first(mesh: Mesh) -> None:
    client = mesh.client(HELLO)
    with pytest.raises(RuntimeError, match="await start"):
        client.server_context()
    assert client.expiration_timestamp is None


async def test_renewal_at_70_percent_keeps_old_connections_and_serves_new_ones(
    mesh: Mesh,
) -> None:
    hello, gateway = mesh.client(HELLO), mesh.client(GATEWAY)
    await hello.start()
    await gateway.start()
    assert len(mesh.tokens) == 0  # both bootstrap tokens are used up
    first = hello.certificate
    assert first is not None
    assert hello.expiration_timestamp == first.not_after.timestamp()
    server_context = hello.server_context()
    echo = await start_echo_server(server_context)
    old_reader, old_writer = await connect(echo, gateway, HELLO)
    try:
        assert await exchange(old_reader, old_writer, "before") == f"{GATEWAY} before"
        assert presented_certificate(old_writer) == pem_to_der(first.certificate)

        # both drivers (and the service's own) sleep until 70 % of the lifetime
        await wait_until("the renewal loops to sleep", lambda: mesh.time.sleeping >= 3)
        renew_at = RenewalPolicy().renew_at(Validity(first.not_before, first.not_after))
        mesh.time.advance_to(renew_at - timedelta(seconds=1))
        await asyncio.sleep(0.05)
        assert hello.certificates_issued == 1, "renewed before 70 % of the lifetime"
        mesh.time.advance_to(renew_at)
        await wait_until(
            "both certificates renewed",
            lambda: hello.certificates_issued == 2 and gateway.certificates_issued == 2,
        )

        second = hello.certificate
        assert second is not None and second.certificate != first.certificate
        assert second.not_after >= first.not_after + timedelta(hours=16)
        assert hello.expiration_timestamp == second.not_after.timestamp()
        assert hello.server_context() is server_context  # the listener was never rebuilt

        # the connection from before the renewal keeps working ...
        assert await exchange(old_reader, old_writer, "still here") == f"{GATEWAY} still here"
        # ... and a new one gets the new certificate, and sees the new caller certificate
        new_reader, new_writer = await connect(echo, gateway, HELLO)
        try:
            assert await exchange(new_reader, new_writer, "after") == f"{GATEWAY} after"
            assert presented_certificate(new_writer) == pem_to_der(second.certificate)
        finally:
            await close_writer(new_writer)
        assert echo.peers == [GATEWAY, GATEWAY]
    finally:
        await close_writer(old_writer)
        await echo.close()
        await hello.close()
        await gateway.close()


async def test_refused_first_certificate_raises(mesh: Mesh) -> None:
    client = IdentityClient(
        HELLO,
        trust_anchors_pem=mesh.authority.trust_anchors_pem,
        endpoint=HttpIdentityEndpoint(mesh.service.url),
        credential=mesh.tokens.mint(GATEWAY, mesh.time.now()),
        clock=mesh.time.now,
        sleep=mesh.time.sleep,
    )
    with pytest.raises(IdentityRefused, match="token is for"):
        await client.start()


class DirectEndpoint:
    """Signs in process, recording how each request proved its identity."""

    def __init__(self, mesh: Mesh, client: list[IdentityClient]) -> None:
        self.mesh = mesh
        self.client = client
        self.proofs: list[tuple[str, str]] = []

    async def certify(
        self, request: CertifyRequest, ssl_context: ssl.SSLContext
    ) -> CertifyResponse:
        presents = self.client and ssl_context is self.client[0]._client
        self.proofs.append(("certificate" if presents else "anonymous", request.credential))
        certifier = self.mesh.service.certifier
        peer = request.identity if presents else None
        return await certifier.certify(request, peer_identity=peer, now=self.mesh.time.now())


async def test_expired_certificate_falls_back_to_a_fresh_credential(mesh: Mesh) -> None:
    holder: list[IdentityClient] = []
    endpoint = DirectEndpoint(mesh, holder)
    client = IdentityClient(
        HELLO,
        trust_anchors_pem=mesh.authority.trust_anchors_pem,
        endpoint=endpoint,
        credential=lambda: mesh.tokens.mint(HELLO, mesh.time.now()),
        clock=mesh.time.now,
        sleep=mesh.time.sleep,
    )
    holder.append(client)
    await client.renew()
    await client.renew()  # still valid: proves itself with the certificate
    current = client.certificate
    assert current is not None
    mesh.time.advance_to(current.not_after)
    await client.renew()  # expired: bootstraps again with a new token
    assert [proof for proof, _ in endpoint.proofs] == ["anonymous", "certificate", "anonymous"]
    assert endpoint.proofs[0][1] != "" and endpoint.proofs[1][1] == ""
    assert endpoint.proofs[2][1] not in {"", endpoint.proofs[0][1]}
    assert client.certificates_issued == 3


async def test_in_process_component_renews_without_credentials(mesh: Mesh) -> None:
    client = IdentityClient(
        GATEWAY,
        trust_anchors_pem=mesh.authority.trust_anchors_pem,
        endpoint=InProcessEndpoint(mesh.service.certifier, clock=mesh.time.now),
        credential="",
        clock=mesh.time.now,
        sleep=mesh.time.sleep,
    )
    await client.start()
    try:
        first = client.certificate
        assert first is not None
        mesh.time.advance_to(first.not_after)  # even after expiry
        await wait_until("the renewal", lambda: client.certificates_issued == 2)
    finally:
        await client.close()
