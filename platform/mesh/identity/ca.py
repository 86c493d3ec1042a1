"""The trust anchor and the issuer: creating, storing, loading, and signing leaves.

Two levels, as in Linkerd: a self-signed **trust anchor** (root, 10 years) that every
workload trusts, and an **issuer** (intermediate CA, 1 year) signed by it that signs
workload certificates (24 h). Peers verify a leaf through the issuer back to the anchor,
so the issuer can be replaced without touching anything that trusts the anchor.

On disk (``CertificateAuthority.load_or_create``) a directory (mode 0700) holds
``ca.crt``, ``ca.key``, ``issuer.crt`` and ``issuer.key`` (keys 0600). The first start
creates them; later starts load them, so the trust anchor survives restarts. A key is
always written before its certificate, so a present certificate means a complete pair.
``ca.key`` may be absent when the anchor is managed elsewhere (an issuer handed in, as
Kubernetes secrets do); the issuer then cannot be renewed here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fnmesh.platform.mesh.identity.certificate import IssuedCertificate
from fnmesh.platform.mesh.identity.clock import require_aware
from fnmesh.platform.mesh.identity.csr import (
    generate_key,
    key_to_pem,
    load_key,
    same_key,
    subject_for,
)
from fnmesh.platform.mesh.identity.errors import AuthorityError
from fnmesh.platform.mesh.identity.names import TRUST_DOMAIN

ANCHOR_LIFETIME = timedelta(days=3650)
ISSUER_LIFETIME = timedelta(days=365)
LEAF_LIFETIME = timedelta(hours=24)
CLOCK_SKEW_ALLOWANCE = timedelta(seconds=20)
ISSUER_RENEW_BEFORE = timedelta(days=30)  # a new issuer this long before the old one ends

ANCHOR_CERT, ANCHOR_KEY = "ca.crt", "ca.key"
ISSUER_CERT, ISSUER_KEY = "issuer.crt", "issuer.key"


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fnmesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """The root every workload trusts; ``key`` is None when it is managed elsewhere."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None

    @classmethod
    def create(
        cls,
        now: datetime,
        *,
        trust_domain: str = TRUST_DOMAIN,
        lifetime: timedelta = ANCHOR_LIFETIME,
    ) -> TrustAnchor:
        require_aware(now)
        key = generate_key()
        name = _name(f"root.{trust_domain}")
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @property
    def pem(self) -> str:
        return certificate_pem(self.certificate)

    def create_issuer(
        self,
        now: datetime,
        *,
        trust_domain: str = TRUST_DOMAIN,
        lifetime: timedelta = ISSUER_LIFETIME,
    ) -> Issuer:
        """A new issuer signed by this anchor (never outliving it)."""
        require_aware(now)
        if self.key is None:
            raise AuthorityError(
                "cannot create an issuer: the trust anchor's private key is not available"
            )
        key = generate_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"identity.{trust_domain}"))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
            .not_valid_after(min(now + lifetime, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return Issuer(certificate, key)


@dataclass(frozen=True, slots=True)
class Issuer:
    """The intermediate CA that signs workload certificates."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return certificate_pem(self.certificate)

    def sign(
        self,
        csr: x509.CertificateSigningRequest,
        identity: str,
        now: datetime,
        lifetime: timedelta = LEAF_LIFETIME,
        *,
        clock_skew: timedelta = CLOCK_SKEW_ALLOWANCE,
    ) -> IssuedCertificate:
        """A leaf for ``identity`` over the CSR's public key.

        Only the CSR's key is used: the names come from ``identity``, which the caller has
        checked (``check_csr``) and authenticated. The leaf starts ``clock_skew`` before
        ``now`` so peers with a slightly slow clock accept it, and ends after ``lifetime``
        or with the issuer, whichever is first.
        """
        require_aware(now)
        subject = subject_for(identity)
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("the CSR key must be an ECDSA key")
        not_before = now - clock_skew
        not_after = min(now + lifetime, self.certificate.not_valid_after_utc)
        if not_after <= now:
            raise AuthorityError(
                f"the issuer expired at {self.certificate.not_valid_after_utc.isoformat()}:"
                " restart the identity service to renew it"
            )
        extended = x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        )
        leaf = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(), critical=True)
            .add_extension(extended, critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(identity)]), critical=len(subject) == 0
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return IssuedCertificate(
            identity=identity,
            certificate=certificate_pem(leaf),
            chain=self.pem,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """The anchor and the issuer together, and where they are kept (None: in memory only)."""

    anchor: TrustAnchor
    issuer: Issuer
    directory: Path | None = None
    trust_domain: str = TRUST_DOMAIN

    @property
    def trust_anchors_pem(self) -> str:
        return self.anchor.pem

    @classmethod
    def create(cls, now: datetime, *, trust_domain: str = TRUST_DOMAIN) -> CertificateAuthority:
        """A new anchor and issuer kept in memory only (tests, throwaway platforms)."""
        anchor = TrustAnchor.create(now, trust_domain=trust_domain)
        return cls(anchor, anchor.create_issuer(now, trust_domain=trust_domain), None, trust_domain)

    @classmethod
    def load_or_create(
        cls, directory: Path, now: datetime, *, trust_domain: str = TRUST_DOMAIN
    ) -> CertificateAuthority:
        """Load the anchor and issuer from ``directory``, creating what is missing.

        An issuer that is due (``ISSUER_RENEW_BEFORE`` its end) is replaced by a new one
        signed by the same anchor. AuthorityError says what is wrong and how to fix it.
        """
        require_aware(now)
        _private_directory(directory)
        anchor_path = directory / ANCHOR_CERT
        if anchor_path.exists():
            anchor = _load_anchor(directory, now)
        else:
            anchor = TrustAnchor.create(now, trust_domain=trust_domain)
            assert anchor.key is not None
            _write_private(directory / ANCHOR_KEY, key_to_pem(anchor.key))
            _write_public(anchor_path, anchor.pem)
        if (directory / ISSUER_CERT).exists():
            issuer = _load_issuer(directory, anchor)
        else:
            issuer = anchor.create_issuer(now, trust_domain=trust_domain)
            _store_issuer(directory, issuer)
        authority = cls(anchor, issuer, directory, trust_domain)
        return authority.renew_issuer_if_due(now)

    def issuer_due(self, now: datetime) -> bool:
        return now >= self.issuer.certificate.not_valid_after_utc - ISSUER_RENEW_BEFORE

    def renew_issuer_if_due(self, now: datetime) -> CertificateAuthority:
        """This authority, or one with a new issuer (stored) when the current one is due."""
        if not self.issuer_due(now) or self.anchor.key is None:
            return self
        issuer = self.anchor.create_issuer(now, trust_domain=self.trust_domain)
        if issuer.certificate.not_valid_after_utc <= self.issuer.certificate.not_valid_after_utc:
            return self  # the anchor itself ends first: a new issuer would not last longer
        if self.directory is not None:
            _store_issuer(self.directory, issuer)
        return replace(self, issuer=issuer)


def _private_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as error:
        raise AuthorityError(
            f"cannot use {directory} for the certificate authority ({error}): choose a"
            " directory this user can create and own"
        ) from None


def _write_private(path: Path, text: str) -> None:
    _write(path, text, 0o600)


def _write_public(path: Path, text: str) -> None:
    _write(path, text, 0o644)


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` atomically, the file never readable beyond ``mode``."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # O_CREAT's mode is masked by the umask
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _store_issuer(directory: Path, issuer: Issuer) -> None:
    _write_private(directory / ISSUER_KEY, key_to_pem(issuer.key))
    _write_public(directory / ISSUER_CERT, issuer.pem)


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as error:
        raise AuthorityError(f"cannot read certificate {path}: {error}") from None


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        os.chmod(path, 0o600)
        return load_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as error:
        raise AuthorityError(f"cannot read private key {path}: {error}") from None


def _load_anchor(directory: Path, now: datetime) -> TrustAnchor:
    certificate = _read_certificate(directory / ANCHOR_CERT)
    if now >= certificate.not_valid_after_utc:
        raise AuthorityError(
            f"the trust anchor {directory / ANCHOR_CERT} expired at"
            f" {certificate.not_valid_after_utc.isoformat()}: move {directory} away to create"
            " a new one (every workload then needs new certificates)"
        )
    key_path = directory / ANCHOR_KEY
    key = _read_key(key_path) if key_path.exists() else None
    if key is not None and not same_key(certificate, key):
        raise AuthorityError(f"{key_path} is not the key of {directory / ANCHOR_CERT}")
    return TrustAnchor(certificate, key)


def _load_issuer(directory: Path, anchor: TrustAnchor) -> Issuer:
    certificate = _read_certificate(directory / ISSUER_CERT)
    key_path = directory / ISSUER_KEY
    if not key_path.exists():
        raise AuthorityError(
            f"{directory / ISSUER_CERT} has no key: put it in {key_path}, or remove the"
            " certificate so a new issuer is created"
        )
    key = _read_key(key_path)
    if not same_key(certificate, key):
        raise AuthorityError(f"{key_path} is not the key of {directory / ISSUER_CERT}")
    try:
        certificate.verify_directly_issued_by(anchor.certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise AuthorityError(
            f"{directory / ISSUER_CERT} was not signed by the trust anchor"
            f" {directory / ANCHOR_CERT}: remove the issuer files so a new issuer is created"
        ) from None
    return Issuer(certificate, key)
