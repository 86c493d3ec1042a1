"""Keys and certificate signing requests, and the rules a CSR must meet to be signed.

A workload makes its own ECDSA P-256 key (it never leaves the workload) and asks for a
certificate with a CSR naming exactly one identity as a SAN DNS entry. The identity
service signs only CSRs whose signature verifies and whose only name is the identity the
caller's credential is for.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fnmesh.platform.mesh.identity.errors import IdentityRefused

_COMMON_NAME_LIMIT = 64  # X.520 upper bound for a common name


@dataclass(frozen=True, slots=True)
class KeyAndCsr:
    key: ec.EllipticCurvePrivateKey
    csr_pem: str

    @property
    def key_pem(self) -> str:
        return key_to_pem(self.key)


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_key(pem: bytes | str) -> ec.EllipticCurvePrivateKey:
    """Load an ECDSA P-256 private key from PEM; ValueError if it is anything else."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the key is not an ECDSA P-256 key")
    return key


def same_key(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    """Whether ``certificate`` certifies the public half of ``key``."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def subject_for(identity: str) -> x509.Name:
    """The subject of a CSR or certificate for ``identity``: its CN when it fits, else empty.

    The SAN carries the identity either way; an empty subject makes the SAN critical.
    """
    if len(identity) <= _COMMON_NAME_LIMIT:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)])
    return x509.Name([])


def make_csr(identity: str, key: ec.EllipticCurvePrivateKey | None = None) -> KeyAndCsr:
    """A fresh key (unless given) and a CSR for ``identity`` signed with it."""
    key = key or generate_key()
    subject = subject_for(identity)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(identity)]),
            critical=len(subject) == 0,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyAndCsr(key, csr.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR; ValueError says how it is malformed."""
    if "-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("not a PEM certificate request: expected '-----BEGIN CERTIFICATE REQUEST'")
    try:
        return x509.load_pem_x509_csr(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as error:
        raise ValueError(f"not a readable PEM certificate request ({error})") from None


def check_csr(
    csr: str | x509.CertificateSigningRequest, expected_identity: str
) -> x509.CertificateSigningRequest:
    """Return the CSR if it may be signed for ``expected_identity``; IdentityRefused if not.

    Refused: a signature that does not verify, a key other than ECDSA P-256, a SAN that is
    not exactly one DNS name equal to the identity, any other kind of SAN, or a common name
    other than the identity. A PEM that does not parse raises ValueError.
    """
    request = load_csr(csr) if isinstance(csr, str) else csr
    if not request.is_signature_valid:
        raise IdentityRefused(
            "csr signature does not verify: sign the request with the key it carries"
        )
    key = request.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise IdentityRefused("csr key must be ECDSA P-256: make the key with generate_key()")
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise IdentityRefused(
            f"csr has no subject alternative name: name {expected_identity!r} as its only"
            " SAN DNS entry"
        ) from None
    names = san.get_values_for_type(x509.DNSName)
    others = [name for name in san if not isinstance(name, x509.DNSName)]
    if others:
        raise IdentityRefused(
            f"csr names {', '.join(str(o.value) for o in others)}: only one DNS name,"
            f" {expected_identity!r}, may be requested"
        )
    foreign = [name for name in names if name != expected_identity]
    if foreign:
        raise IdentityRefused(
            f"csr names {', '.join(repr(n) for n in foreign)} but the credential is for"
            f" {expected_identity!r}: request only your own identity"
        )
    if len(names) != 1:
        raise IdentityRefused(
            f"csr must name {expected_identity!r} exactly once as a SAN DNS entry,"
            f" not {len(names)} times"
        )
    for attribute in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        if attribute.value != expected_identity:
            raise IdentityRefused(
                f"csr subject common name {attribute.value!r} is not {expected_identity!r}:"
                " leave it empty or use the identity"
            )
    return request
