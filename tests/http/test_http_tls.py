"""TLS on both sides with certificates made here; the client certificate names the peer."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from httpkit import StartServer

from fnmesh.platform.http import ConnectError, ConnectionPool, Peer, Request, Response

CALLER = "caller.default.serviceaccount.identity.fnmesh.local"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: tuple[Path, Path]
    client: tuple[Path, Path]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test root"))
        .issuer_name(_name("test root"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        common: str, names: list[x509.GeneralName]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    ca_path = folder / "ca.crt"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = leaf(
        "server", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    client = leaf("client", [x509.DNSName(CALLER), x509.DNSName("second.example")])
    return Pki(ca_path, _write(folder, "server", *server), _write(folder, "client", *client))


def server_context(pki: Pki, verify: ssl.VerifyMode) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pki.server)
    context.load_verify_locations(pki.ca)
    context.verify_mode = verify
    return context


def client_context(pki: Pki, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca)
    if with_certificate:
        context.load_cert_chain(*pki.client)
    return context


async def who(request: Request, peer: Peer) -> Response:
    return Response(200, [], f"{peer.tls} {peer.identity}".encode())


async def test_mutual_tls_names_the_client(pki: Pki, start_server: StartServer) -> None:
    server = await start_server(who, ssl=server_context(pki, ssl.CERT_REQUIRED))
    pool = ConnectionPool()
    context = client_context(pki, with_certificate=True)
    try:
        for _ in range(2):
            response = await pool.request(
                "127.0.0.1",
                server.port,
                Request("GET", b"/", []),
                timeout=5,
                ssl=context,
                server_hostname="localhost",
            )
            assert response.body == f"True {CALLER}".encode()
        assert pool.opened == 1
    finally:
        await pool.close()


async def test_tls_without_a_client_certificate_has_no_identity(
    pki: Pki, start_server: StartServer
) -> None:
    server = await start_server(who, ssl=server_context(pki, ssl.CERT_OPTIONAL))
    pool = ConnectionPool()
    try:
        response = await pool.request(
            "127.0.0.1",
            server.port,
            Request("GET", b"/", []),
            timeout=5,
            ssl=client_context(pki, with_certificate=False),
            server_hostname="localhost",
        )
        assert response.body == b"True None"
    finally:
        await pool.close()


async def test_a_server_name_that_does_not_match_is_a_connect_error(
    pki: Pki, start_server: StartServer
) -> None:
    server = await start_server(who, ssl=server_context(pki, ssl.CERT_OPTIONAL))
    pool = ConnectionPool()
    try:
        with pytest.raises(ConnectError, match="certificate"):
            await pool.request(
                "127.0.0.1",
                server.port,
                Request("GET", b"/", []),
                timeout=5,
                ssl=client_context(pki, with_certificate=False),
                server_hostname="elsewhere",
            )
    finally:
        await pool.close()
