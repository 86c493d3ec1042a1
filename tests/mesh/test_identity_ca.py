"""The trust anchor and issuer: creation, storage, restarts, and the leaves they sign."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from identitykit import HELLO, real_now

from fnmesh.platform.mesh.identity import (
    AuthorityError,
    CertificateAuthority,
    TrustAnchor,
    check_csr,
    identity_name,
    make_csr,
)
from fnmesh.platform.mesh.identity.ca import ISSUER_RENEW_BEFORE

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
FILES = ("ca.crt", "ca.key", "issuer.crt", "issuer.key")


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Files must be private by our own doing, not thanks to the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leaf_for(authority: CertificateAuthority, identity: str, now: datetime) -> x509.Certificate:
    csr = check_csr(make_csr(identity).csr_pem, identity)
    issued = authority.issuer.sign(csr, identity, now)
    return x509.load_pem_x509_certificate(issued.certificate.encode())


def test_first_start_creates_private_files(tmp_path: Path, permissive_umask: None) -> None:
    directory = tmp_path / "ca"
    CertificateAuthority.load_or_create(directory, NOW)
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)
    assert mode(directory) == 0o700
    assert mode(directory / "ca.key") == 0o600
    assert mode(directory / "issuer.key") == 0o600


def test_existing_directory_and_keys_are_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    CertificateAuthority.load_or_create(directory, NOW)
    os.chmod(directory, 0o755)
    os.chmod(directory / "issuer.key", 0o644)
    CertificateAuthority.load_or_create(directory, NOW)
    assert mode(directory) == 0o700
    assert mode(directory / "issuer.key") == 0o600


def test_restart_keeps_the_trust_anchor_and_issuer(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path, NOW)
    again = CertificateAuthority.load_or_create(tmp_path, NOW + timedelta(days=3))
    assert again.trust_anchors_pem == first.trust_anchors_pem
    assert again.issuer.pem == first.issuer.pem
    assert again.anchor.key is not None
    # a leaf signed after the restart chains to the anchor from before it
    leaf = leaf_for(again, HELLO, NOW + timedelta(days=3))
    leaf.verify_directly_issued_by(first.issuer.certificate)


def test_issuer_chains_to_the_anchor() -> None:
    authority = CertificateAuthority.create(NOW)
    anchor, issuer = authority.anchor.certificate, authority.issuer.certificate
    anchor.verify_directly_issued_by(anchor)
    issuer.verify_directly_issued_by(anchor)
    assert anchor.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert anchor.not_valid_after_utc - NOW == timedelta(days=3650)
    assert issuer.not_valid_after_utc - NOW == timedelta(days=365)


def test_leaf_names_only_the_identity_and_is_for_tls_both_ways() -> None:
    authority = CertificateAuthority.create(NOW)
    leaf = leaf_for(authority, HELLO, NOW)
    leaf.verify_directly_issued_by(authority.issuer.certificate)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HELLO]
    assert list(san) == [x509.DNSName(HELLO)]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.key_encipherment
    extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(extended) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_before_utc == NOW - timedelta(seconds=20)
    assert leaf.not_valid_after_utc == NOW + timedelta(hours=24)


def test_long_identity_has_empty_subject_and_critical_san() -> None:
    authority = CertificateAuthority.create(NOW)
    identity = identity_name("a-rather-long-service-account", "and-a-long-namespace-too")
    assert len(identity) > 64
    leaf = leaf_for(authority, identity, NOW)
    assert len(leaf.subject) == 0
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def test_leaf_never_outlives_the_issuer() -> None:
    authority = CertificateAuthority.create(NOW)
    end = authority.issuer.certificate.not_valid_after_utc
    leaf = leaf_for(authority, HELLO, end - timedelta(hours=1))
    assert leaf.not_valid_after_utc == end


def test_due_issuer_is_replaced_on_load_and_still_chains_to_the_anchor(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path, NOW)
    due = first.issuer.certificate.not_valid_after_utc - ISSUER_RENEW_BEFORE + timedelta(hours=1)
    later = CertificateAuthority.load_or_create(tmp_path, due)
    assert later.trust_anchors_pem == first.trust_anchors_pem
    assert later.issuer.pem != first.issuer.pem
    later.issuer.certificate.verify_directly_issued_by(first.anchor.certificate)
    assert (tmp_path / "issuer.crt").read_text() == later.issuer.pem
    assert CertificateAuthority.load_or_create(tmp_path, due).issuer.pem == later.issuer.pem


def test_anchor_managed_elsewhere_loads_without_its_key(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path, NOW)
    (tmp_path / "ca.key").unlink()
    loaded = CertificateAuthority.load_or_create(tmp_path, NOW)
    assert loaded.anchor.key is None
    assert loaded.issuer.pem == first.issuer.pem


def test_issuer_from_another_anchor_is_refused(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path / "a", NOW)
    CertificateAuthority.load_or_create(tmp_path / "b", NOW)
    for name in ("issuer.crt", "issuer.key"):
        (tmp_path / "a" / name).write_bytes((tmp_path / "b" / name).read_bytes())
    with pytest.raises(AuthorityError, match="not signed by the trust anchor"):
        CertificateAuthority.load_or_create(tmp_path / "a", NOW)


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path, NOW)
    (tmp_path / "issuer.key").write_bytes((tmp_path / "ca.key").read_bytes())
    with pytest.raises(AuthorityError, match="is not the key of"):
        CertificateAuthority.load_or_create(tmp_path, NOW)


def test_expired_anchor_says_how_to_recover(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path, NOW)
    with pytest.raises(AuthorityError, match=r"expired .* move"):
        CertificateAuthority.load_or_create(tmp_path, NOW + timedelta(days=3651))


def test_damaged_certificate_is_reported_with_its_path(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path, NOW)
    (tmp_path / "ca.crt").write_text("garbage")
    with pytest.raises(AuthorityError, match=r"ca\.crt"):
        CertificateAuthority.load_or_create(tmp_path, NOW)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TrustAnchor.create(datetime(2030, 1, 1))


def test_real_clock_authority_is_currently_valid() -> None:
    now = real_now()
    authority = CertificateAuthority.create(now)
    assert authority.anchor.certificate.not_valid_before_utc <= now
