"""mTLS with identity certificates over real sockets: who gets in and who does not."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from identitykit import (
    GATEWAY,
    HELLO,
    EchoServer,
    close_writer,
    credentials_for,
    exchange,
    real_now,
    start_echo_server,
)

from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    client_context,
    peer_identity,
    server_context,
)


@pytest.fixture
def authority() -> CertificateAuthority:
    return CertificateAuthority.create(real_now())


@pytest.fixture
async def echo(authority: CertificateAuthority) -> AsyncIterator[EchoServer]:
    context = server_context(authority.trust_anchors_pem, credentials_for(authority, HELLO))
    server = await start_echo_server(context)
    yield server
    await server.close()


def gateway_context(authority: CertificateAuthority) -> ssl.SSLContext:
    return client_context(authority.trust_anchors_pem, credentials_for(authority, GATEWAY))


async def assert_refused(echo: EchoServer, context: ssl.SSLContext | None) -> None:
    """The connection fails during or right after the handshake; the app never sees it."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", echo.port, ssl=context, server_hostname=HELLO if context else None
            ),
            10,
        )
    except (ssl.SSLError, ConnectionError):
        assert echo.peers == []
        return
    try:
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(1024), 10)
    except (ssl.SSLError, ConnectionError):
        reply = b""
    finally:
        await close_writer(writer)
    assert reply == b""
    assert echo.peers == []


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_mutual_tls_sees_the_callers_identity(
    authority: CertificateAuthority, echo: EchoServer, version: ssl.TLSVersion
) -> None:
    context = gateway_context(authority)
    context.maximum_version = version
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", echo.port, ssl=context, server_hostname=HELLO
    )
    try:
        assert await exchange(reader, writer, "ping") == f"{GATEWAY} ping"
        assert peer_identity(writer.get_extra_info("ssl_object")) == HELLO
        assert writer.get_extra_info("ssl_object").version() == version.name.replace("_", ".")
    finally:
        await close_writer(writer)
    assert echo.peers == [GATEWAY]


async def test_plaintext_client_is_refused(echo: EchoServer) -> None:
    await assert_refused(echo, None)


async def test_client_without_certificate_is_refused(
    authority: CertificateAuthority, echo: EchoServer
) -> None:
    await assert_refused(echo, client_context(authority.trust_anchors_pem))


async def test_client_certificate_from_another_ca_is_refused(
    authority: CertificateAuthority, echo: EchoServer
) -> None:
    other = CertificateAuthority.create(real_now())
    # trusts our anchor (so it accepts the server), but presents a certificate of another CA
    context = client_context(
        authority.trust_anchors_pem + other.trust_anchors_pem, credentials_for(other, GATEWAY)
    )
    await assert_refused(echo, context)


def test_contexts_allow_tls_1_2_and_newer_only(authority: CertificateAuthority) -> None:
    server = server_context(authority.trust_anchors_pem, credentials_for(authority, HELLO))
    client = gateway_context(authority)
    for context in (server, client):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname


async def test_wrong_expected_server_identity_fails_hostname_verification(
    authority: CertificateAuthority, echo: EchoServer
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as failure:
        await asyncio.open_connection(
            "127.0.0.1",
            echo.port,
            ssl=gateway_context(authority),
            server_hostname="other.default.serviceaccount.identity.fnmesh.local",
        )
    assert "hostname mismatch" in str(failure.value).lower()


async def test_server_from_another_ca_is_not_trusted(authority: CertificateAuthority) -> None:
    other = CertificateAuthority.create(real_now())
    context = server_context(other.trust_anchors_pem, credentials_for(other, HELLO))
    foreign = await start_echo_server(context)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", foreign.port, ssl=gateway_context(authority), server_hostname=HELLO
            )
    finally:
        await foreign.close()


def test_key_material_leaves_no_file_behind(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    server_context(authority.trust_anchors_pem, credentials_for(authority, HELLO), scratch=tmp_path)
    client_context(authority.trust_anchors_pem, credentials_for(authority, HELLO), scratch=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_peer_identity_of_nothing_is_none() -> None:
    assert peer_identity(None) is None


async def test_optional_client_certificate_server_accepts_anonymous_clients(
    authority: CertificateAuthority,
) -> None:
    context = server_context(
        authority.trust_anchors_pem, credentials_for(authority, HELLO), require_client_cert=False
    )
    echo = await start_echo_server(context)
    try:
        anonymous = client_context(authority.trust_anchors_pem)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", echo.port, ssl=anonymous, server_hostname=HELLO
        )
        try:
            assert await exchange(reader, writer, "hi") == "None hi"
        finally:
            await close_writer(writer)
    finally:
        await echo.close()
