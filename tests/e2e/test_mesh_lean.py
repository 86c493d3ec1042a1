"""The replica proxy stays small: keys and CSRs through libcrypto, certificates read
without ``cryptography``, metrics written without ``prometheus_client`` -- and the same
results as the libraries they stand in for."""

from __future__ import annotations

import base64
import ipaddress
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    Certifier,
    IdentityError,
    IssuedCertificate,
    OneTimeTokenVerifier,
    TokenIssuer,
    identity_name,
)
from fnmesh.platform.mesh.identity import libcrypto as libcrypto_module
from fnmesh.platform.mesh.identity.certificate import read_certificate, request_public_key
from fnmesh.platform.mesh.identity.client import accept_certificate
from fnmesh.platform.mesh.identity.csr import check_csr, load_key
from fnmesh.platform.mesh.identity.libcrypto import LibcryptoError, libcrypto, new_key_and_csr
from fnmesh.platform.mesh.identity.wire import CertifyResponse
from fnmesh.platform.mesh.metrics.exposition import Registry, go_float, render
from fnmesh.platform.mesh.metrics.process import ProcessMetrics
from fnmesh.platform.mesh.metrics.proxy import ProxyMetrics
from fnmesh.platform.mesh.metrics.responses import ResponseMetrics
from fnmesh.platform.mesh.outbound.metrics import OutboundMetrics

HELLO = identity_name("hello", "default")
LONG = identity_name("a" * 40, "b" * 20)  # longer than a common name may be
SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def public_key(key_pem: str) -> bytes:
    return load_key(key_pem).public_key().public_bytes(*SPKI)


def answer(issued: IssuedCertificate) -> CertifyResponse:
    return CertifyResponse(issued.certificate, issued.chain, "", issued.not_after)


@pytest.fixture
def certifier(tmp_path: Path) -> Certifier:
    authority = CertificateAuthority.load_or_create(tmp_path / "ca", datetime.now(UTC))
    return Certifier(authority, OneTimeTokenVerifier(TokenIssuer()))


def test_libcrypto_is_found_next_to_the_ssl_module() -> None:
    assert libcrypto() is not None


@pytest.mark.parametrize("identity", [HELLO, LONG])
def test_keys_and_csrs_pass_the_services_checks(identity: str) -> None:
    key_pem, csr_pem = new_key_and_csr(identity)
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, not encrypted
    request = check_csr(csr_pem, identity)  # signature, curve, the one SAN, the CN
    assert request.public_key().public_bytes(*SPKI) == public_key(key_pem)
    assert request_public_key(csr_pem) == public_key(key_pem)
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == [identity]
    names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(identity) <= 64:
        assert [n.value for n in names] == [identity] and not san.critical
    else:  # an empty subject: the SAN must then be critical
        assert names == [] and san.critical
    assert new_key_and_csr(identity)[0] != key_pem  # a fresh key every time


def test_without_libcrypto_cryptography_makes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libcrypto_module, "libcrypto", lambda: None)
    key_pem, csr_pem = new_key_and_csr(HELLO)
    assert check_csr(csr_pem, HELLO).public_key().public_bytes(*SPKI) == public_key(key_pem)


def test_a_refused_step_names_itself_and_cryptography_takes_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = libcrypto()
    assert found is not None
    with pytest.raises(LibcryptoError, match="X509_REQ_set_pubkey failed"):
        found._csr(HELLO, 0)  # no key: OpenSSL refuses, nothing is left half made

    def refuse(identity: str) -> tuple[str, str]:
        raise LibcryptoError("libcrypto EVP_PKEY_keygen failed")

    monkeypatch.setattr(found, "key_and_csr", refuse)
    key_pem, csr_pem = new_key_and_csr(HELLO)
    assert check_csr(csr_pem, HELLO).public_key().public_bytes(*SPKI) == public_key(key_pem)


def test_an_issued_certificate_is_read_as_cryptography_reads_it(certifier: Certifier) -> None:
    key_pem, csr_pem = new_key_and_csr(HELLO)
    issued = certifier.issue(csr_pem, HELLO, datetime.now(UTC))
    fields = read_certificate(issued.certificate)
    parsed = x509.load_pem_x509_certificate(issued.certificate.encode())
    assert fields.not_before == parsed.not_valid_before_utc
    assert fields.not_after == parsed.not_valid_after_utc
    assert fields.dns_names == (HELLO,)
    assert fields.public_key == parsed.public_key().public_bytes(*SPKI) == public_key(key_pem)
    accepted = accept_certificate(answer(issued), HELLO, csr_pem)
    assert (accepted.not_before, accepted.not_after) == (issued.not_before, issued.not_after)
    assert accepted.chain_pem == issued.chain_pem


def test_a_certificate_for_another_key_or_name_is_refused(certifier: Certifier) -> None:
    _, csr_pem = new_key_and_csr(HELLO)
    _, other_csr = new_key_and_csr(HELLO)
    issued = certifier.issue(other_csr, HELLO, datetime.now(UTC))
    refused = answer(issued)
    with pytest.raises(IdentityError, match="for another key"):
        accept_certificate(refused, HELLO, csr_pem)
    with pytest.raises(IdentityError, match="not for"):
        accept_certificate(refused, identity_name("other", "default"), other_csr)
    with pytest.raises(IdentityError, match="unusable certificate"):
        accept_certificate(
            CertifyResponse("not a certificate", "", "", issued.not_after), HELLO, csr_pem
        )


def test_times_after_2049_and_several_names_are_read() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    start = datetime(2049, 12, 31, 23, 59, 58, tzinfo=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)  # UTCTime
        .not_valid_after(start + timedelta(days=400))  # GeneralizedTime from 2050 on
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("a.example"),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                    x509.DNSName("b.example"),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    fields = read_certificate(pem)
    assert fields.not_before == start
    assert fields.not_after == start + timedelta(days=400)
    assert fields.dns_names == ("a.example", "b.example")
    with pytest.raises(ValueError, match="no PEM certificate"):
        read_certificate(pem.replace("CERTIFICATE", "THING"))
    cut = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)[:120]).decode()
    with pytest.raises(ValueError, match="truncated DER"):
        read_certificate(f"-----BEGIN CERTIFICATE-----\n{cut}\n-----END CERTIFICATE-----\n")


def filled_metrics() -> tuple[ResponseMetrics, ProxyMetrics, OutboundMetrics]:
    labels = {"namespace": "default", "function": "hello", "revision": "hello-00001"}
    responses = ResponseMetrics(
        direction="inbound", peer_label="client_id", tls=True, labels=labels
    )
    for status, latency in ((200, 0.4), (200, 7.0), (500, 1200.0), (404, 3.0)):
        responses.request("gateway.x")
        responses.response(status, "gateway.x", latency)
    responses.request('odd "name"\\')
    responses.response(200, 'odd "name"\\', 0.1)
    proxy = ProxyMetrics(labels)
    proxy.connection_opened()
    proxy.handshake_failed("plaintext")
    proxy.authz_denied("intruder.x")
    proxy.cert_expiration = lambda: 1795731992.0
    proxy.open_connections = lambda: 3
    outbound = OutboundMetrics(Registry(), tls=True)
    for revision in ("hello-00001", "hello-00002"):
        destination = outbound.for_destination("default", "hello", revision)
        destination.request("hello.default")
        destination.response(503, "", 2.5)
    return responses, proxy, outbound


def test_the_text_format_is_what_prometheus_client_writes() -> None:
    sources = filled_metrics()
    ours = Registry()
    theirs = CollectorRegistry(auto_describe=False)
    for source in sources:
        ours.register(source)
        theirs.register(source)
    assert render(ours.families()) == generate_latest(theirs)


def test_process_families_match_prometheus_clients_names() -> None:
    theirs = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=theirs)
    ours = render(ProcessMetrics().families()).decode()
    expected = generate_latest(theirs).decode()
    assert [line for line in ours.splitlines() if line.startswith("#")] == [
        line for line in expected.splitlines() if line.startswith("#")
    ]
    rss = next(line for line in ours.splitlines() if line.startswith("process_resident"))
    assert float(rss.split()[1]) > 1_000_000


def test_values_are_written_in_gos_notation() -> None:
    assert [go_float(v) for v in (3, 0.5, 1795731992.0, float("inf"), float("nan"))] == [
        "3.0",
        "0.5",
        "1.795731992e+09",
        "+Inf",
        "NaN",
    ]


def test_the_proxy_process_loads_neither_cryptography_nor_prometheus_client() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fnmesh.platform.mesh.proxy.pool\n"
            "heavy = ('cryptography', 'prometheus_client', 'aiohttp', 'tempfile')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]", done.stdout
