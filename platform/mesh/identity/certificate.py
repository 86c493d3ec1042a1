"""A signed workload certificate, and what a workload reads from its own (pure).

``IssuedCertificate`` is what the issuer hands out. ``read_certificate`` reads the few
fields a workload checks in a certificate it is given -- its validity, its SAN DNS
names, its public key -- and ``request_public_key`` the key of a CSR, with a small DER
reader. Nothing here verifies a signature (the TLS handshake does that): it only reads,
so a workload can check its certificate without loading ``cryptography``, which costs a
replica proxy about 12 MB of memory.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

_SEQUENCE, _INTEGER, _OID, _OCTETS, _BOOLEAN = 0x30, 0x02, 0x06, 0x04, 0x01
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_VERSION, _EXTENSIONS = 0xA0, 0xA3  # [0] and [3] EXPLICIT in a TBSCertificate
_DNS_NAME = 0x82  # GeneralName dNSName, [2] IMPLICIT IA5String
_SUBJECT_ALT_NAME = bytes((0x55, 0x1D, 0x11))  # 2.5.29.17


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A signed workload certificate: the leaf, the chain up to (not including) the anchor."""

    identity: str
    certificate: str  # the leaf, PEM
    chain: str  # the issuer, PEM
    not_before: datetime
    not_after: datetime

    @property
    def chain_pem(self) -> str:
        """Leaf then issuer: what a TLS endpoint presents."""
        return self.certificate + self.chain


@dataclass(frozen=True, slots=True)
class CertificateFields:
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]  # the SAN DNS entries, in order
    public_key: bytes  # the SubjectPublicKeyInfo, DER


def read_certificate(pem: str) -> CertificateFields:
    """The fields of the first certificate in ``pem``; ValueError if it is not one."""
    der = pem_body(pem, "CERTIFICATE")
    certificate = _Reader(der).only(_SEQUENCE)
    tbs = certificate.read(_SEQUENCE)
    tbs.optional(_VERSION)
    tbs.read(_INTEGER)  # serial number
    tbs.read(_SEQUENCE)  # signature algorithm
    tbs.read(_SEQUENCE)  # issuer
    validity = tbs.read(_SEQUENCE)
    not_before, not_after = _time(validity), _time(validity)
    tbs.read(_SEQUENCE)  # subject
    public_key = tbs.raw(_SEQUENCE)
    names: tuple[str, ...] = ()
    while not tbs.done:
        tag, field = tbs.any()
        if tag == _EXTENSIONS:
            names = _dns_names(field.only(_SEQUENCE))
    return CertificateFields(not_before, not_after, names, public_key)


def request_public_key(pem: str) -> bytes:
    """The SubjectPublicKeyInfo (DER) of the CSR in ``pem``; ValueError if it is not one."""
    request = _Reader(pem_body(pem, "CERTIFICATE REQUEST")).only(_SEQUENCE)
    info = request.read(_SEQUENCE)
    info.read(_INTEGER)  # version
    info.read(_SEQUENCE)  # subject
    return info.raw(_SEQUENCE)


def pem_body(pem: str, label: str) -> bytes:
    """The DER bytes of the first ``label`` block of ``pem``."""
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start = pem.find(begin)
    stop = pem.find(end, start + len(begin)) if start >= 0 else -1
    if start < 0 or stop < 0:
        raise ValueError(f"no PEM {label.lower()} in the text")
    try:
        return base64.b64decode("".join(pem[start + len(begin) : stop].split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the PEM {label.lower()} is not valid base64") from None


def _dns_names(extensions: _Reader) -> tuple[str, ...]:
    while not extensions.done:
        extension = extensions.read(_SEQUENCE)
        oid = extension.read(_OID).rest()
        extension.optional(_BOOLEAN)  # critical
        value = extension.read(_OCTETS)
        if oid != _SUBJECT_ALT_NAME:
            continue
        names = value.only(_SEQUENCE)
        found = []
        while not names.done:
            tag, name = names.any()
            if tag == _DNS_NAME:
                found.append(name.rest().decode("ascii"))
        return tuple(found)
    return ()


def _time(validity: _Reader) -> datetime:
    tag, field = validity.any()
    text = field.rest().decode("ascii")
    if tag == _UTC_TIME and len(text) == 13 and text.endswith("Z"):
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text  # RFC 5280: YY >= 50 is 19YY
    elif not (tag == _GENERALIZED_TIME and len(text) == 15 and text.endswith("Z")):
        raise ValueError(f"unreadable certificate time {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


class _Reader:
    """Reads DER elements (tag, length, contents) one after another from ``data``."""

    __slots__ = ("data", "end", "position")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self.data = data
        self.position = start
        self.end = len(data) if end is None else end

    @property
    def done(self) -> bool:
        return self.position >= self.end

    def _element(self) -> tuple[int, int, int]:
        """Tag, start and end of the next element's contents; moves past it."""
        data, at = self.data, self.position
        if at + 2 > self.end:
            raise ValueError("truncated DER")
        tag, length = data[at], data[at + 1]
        at += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or at + count > self.end:
                raise ValueError("unsupported DER length")
            length = int.from_bytes(data[at : at + count], "big")
            at += count
        if at + length > self.end:
            raise ValueError("truncated DER")
        self.position = at + length
        return tag, at, at + length

    def any(self) -> tuple[int, _Reader]:
        tag, start, end = self._element()
        return tag, _Reader(self.data, start, end)

    def read(self, tag: int) -> _Reader:
        found, start, end = self._element()
        if found != tag:
            raise ValueError(f"expected DER tag {tag:#04x}, found {found:#04x}")
        return _Reader(self.data, start, end)

    def raw(self, tag: int) -> bytes:
        """The next element whole (tag and length included)."""
        begin = self.position
        self.read(tag)
        return self.data[begin : self.position]

    def optional(self, tag: int) -> _Reader | None:
        if self.done or self.data[self.position] != tag:
            return None
        return self.read(tag)

    def only(self, tag: int) -> _Reader:
        """The one element that fills what is left."""
        inner = self.read(tag)
        if not self.done:
            raise ValueError("unexpected data after DER element")
        return inner

    def rest(self) -> bytes:
        data = self.data[self.position : self.end]
        self.position = self.end
        return data
