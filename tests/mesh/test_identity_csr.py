"""Which CSRs the identity service signs, and why it refuses the others."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from identitykit import GATEWAY, HELLO

from fnmesh.platform.mesh.identity import IdentityRefused, check_csr, make_csr
from fnmesh.platform.mesh.identity.csr import load_csr


def build_csr(
    names: list[x509.GeneralName] | None,
    *,
    common_name: str | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_own_csr_is_accepted() -> None:
    request = make_csr(HELLO)
    csr = check_csr(request.csr_pem, HELLO)
    assert csr.public_key() == request.key.public_key()
    assert request.key_pem.startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (lambda: make_csr(GATEWAY).csr_pem, f"csr names '{GATEWAY}' but the credential is for"),
        (
            lambda: build_csr([x509.DNSName(HELLO), x509.DNSName(GATEWAY)]),
            f"csr names '{GATEWAY}'",
        ),
        (lambda: build_csr([x509.DNSName(HELLO), x509.DNSName(HELLO)]), "exactly once"),
        (lambda: build_csr(None), "no subject alternative name"),
        (
            lambda: build_csr(
                [x509.DNSName(HELLO), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]
            ),
            "csr names 10.0.0.1",
        ),
        (lambda: build_csr([x509.DNSName(HELLO)], common_name=GATEWAY[:64]), "common name"),
        (
            lambda: build_csr([x509.DNSName(HELLO)], key=ec.generate_private_key(ec.SECP384R1())),
            "ECDSA P-256",
        ),
    ],
    ids=["foreign", "extra-name", "twice", "no-san", "ip", "common-name", "p384"],
)
def test_refused_csrs_say_why(csr: object, reason: str) -> None:
    assert callable(csr)
    with pytest.raises(IdentityRefused) as refused:
        check_csr(csr(), HELLO)
    assert reason in refused.value.reason


def test_common_name_equal_to_identity_is_fine() -> None:
    check_csr(build_csr([x509.DNSName(HELLO)], common_name=HELLO), HELLO)


def test_tampered_csr_fails_its_signature() -> None:
    good = load_csr(make_csr(HELLO).csr_pem)
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # a bit of the signature
    tampered = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(IdentityRefused, match="signature does not verify"):
        check_csr(tampered, HELLO)


def test_csr_signed_with_another_key_fails_its_signature() -> None:
    honest = load_csr(make_csr(HELLO).csr_pem)
    other = load_csr(make_csr(HELLO).csr_pem)
    # the first CSR's body with the second CSR's signature
    body = honest.tbs_certrequest_bytes
    forged_der = _replace_signature(honest, other.signature)
    forged = x509.load_der_x509_csr(forged_der)
    assert forged.tbs_certrequest_bytes == body
    with pytest.raises(IdentityRefused, match="signature does not verify"):
        check_csr(forged, HELLO)


def _replace_signature(csr: x509.CertificateSigningRequest, signature: bytes) -> bytes:
    der = csr.public_bytes(serialization.Encoding.DER)
    old = _bit_string(csr.signature)
    assert der.endswith(old)
    body = der[: -len(old)]
    inner = body[_header_length(body) :] + _bit_string(signature)
    return b"\x30" + _length(len(inner)) + inner


def _bit_string(data: bytes) -> bytes:
    return b"\x03" + _length(len(data) + 1) + b"\x00" + data


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    encoded = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _header_length(der: bytes) -> int:
    return 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)


@pytest.mark.parametrize("pem", ["", "hello", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"])
def test_unreadable_csr_is_a_value_error(pem: str) -> None:
    with pytest.raises(ValueError, match="certificate request"):
        check_csr(pem, HELLO)
