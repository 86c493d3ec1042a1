"""SSL contexts from PEM material, and who is on the other end of a TLS connection.

Server contexts require a client certificate chaining to the trust anchor (mTLS) unless
told otherwise; client contexts verify the server's chain and check its name, so callers
pass ``server_hostname=<expected identity>`` and the handshake fails for anyone else.
Both allow TLS 1.2 and 1.3 only.

``ssl`` loads certificates and keys from files only, so ``load_credentials`` writes them
to a private scratch directory (0700, the file 0600; in memory under /dev/shm when there
is one), loads them and removes them at once. Loading into an existing context changes
what *new* handshakes present; established connections keep what they were made with.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

_MEMORY_FS = Path("/dev/shm")


@dataclass(frozen=True, slots=True)
class TlsCredentials:
    """What a TLS endpoint presents: its chain (leaf first, then the issuer) and key."""

    chain_pem: str
    key_pem: str


def _scratch_base() -> str | None:
    if _MEMORY_FS.is_dir() and os.access(_MEMORY_FS, os.W_OK | os.X_OK):
        return str(_MEMORY_FS)
    return None


def load_credentials(
    context: ssl.SSLContext, credentials: TlsCredentials, *, scratch: Path | None = None
) -> None:
    """Make ``context`` present ``credentials`` in its next handshakes."""
    base = str(scratch) if scratch is not None else _scratch_base()
    directory = _private_directory(base)
    path = directory / "credentials.pem"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(credentials.key_pem)
            if not credentials.key_pem.endswith("\n"):
                handle.write("\n")
            handle.write(credentials.chain_pem)
        context.load_cert_chain(certfile=str(path))
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        directory.rmdir()


def _private_directory(base: str | None) -> Path:
    """A new directory only this user can enter, under ``base`` (else the temporary one).

    Made here rather than with ``tempfile``, whose imports (``shutil``, ``bz2``, ``lzma``)
    cost a replica proxy a megabyte of memory for one directory.
    """
    root = Path(base or os.environ.get("TMPDIR") or "/tmp")
    for _ in range(100):
        candidate = root / f"fnmesh-tls-{os.urandom(8).hex()}"
        try:
            candidate.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot make a private directory in {root}")


def _base(context: ssl.SSLContext, trust_anchors_pem: str) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_verify_locations(cadata=trust_anchors_pem)
    return context


def server_context(
    trust_anchors_pem: str,
    credentials: TlsCredentials,
    *,
    require_client_cert: bool = True,
    scratch: Path | None = None,
) -> ssl.SSLContext:
    """A server context presenting ``credentials``.

    With ``require_client_cert`` (the default) a client without a certificate chaining to
    the trust anchor fails the handshake; without it such a certificate is still verified
    when sent, and a client may send none.
    """
    context = _base(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), trust_anchors_pem)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    context.num_tickets = 0  # no session resumption: saves a write per handshake
    load_credentials(context, credentials, scratch=scratch)
    return context


def client_context(
    trust_anchors_pem: str,
    credentials: TlsCredentials | None = None,
    *,
    scratch: Path | None = None,
) -> ssl.SSLContext:
    """A client context verifying the server against the trust anchor and its name.

    ``credentials`` (the client certificate for mTLS) may be None for a client that has
    no certificate yet, such as a workload asking for its first one.
    """
    context = _base(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), trust_anchors_pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if credentials is not None:
        load_credentials(context, credentials, scratch=scratch)
    return context


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The verified peer's identity: the first SAN DNS name of its certificate, if any.

    None for a plaintext connection, a peer that sent no certificate, or a certificate
    that was not verified (``getpeercert`` reports only verified certificates).
    """
    if ssl_object is None:
        return None
    try:
        certificate = ssl_object.getpeercert()
    except ValueError:  # handshake not done
        return None
    if not certificate:
        return None
    for entry in certificate.get("subjectAltName", ()):
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == "DNS":
            name = entry[1]
            return name if isinstance(name, str) else None
    return None
