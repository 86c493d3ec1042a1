"""The certify request and response as JSON (pure).

``POST /v1/certify`` with ``{"identity", "csr", "credential"}`` answers
``{"certificate", "chain", "trustAnchors", "expiresAt"}``. ``credential`` may be empty
when the connection presents the workload's current certificate (a renewal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fnmesh.platform.mesh.identity.errors import BadRequest
from fnmesh.platform.mesh.identity.names import TRUST_DOMAIN, check_identity

CERTIFY_PATH = "/v1/certify"
MAX_CSR_CHARS = 8 * 1024
MAX_CREDENTIAL_CHARS = 16 * 1024


@dataclass(frozen=True, slots=True)
class CertifyRequest:
    identity: str
    csr: str  # PEM
    credential: str = ""

    def to_json(self) -> dict[str, str]:
        return {"identity": self.identity, "csr": self.csr, "credential": self.credential}


@dataclass(frozen=True, slots=True)
class CertifyResponse:
    certificate: str  # the leaf, PEM
    chain: str  # the issuer, PEM
    trust_anchors: str  # PEM
    expires_at: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "certificate": self.certificate,
            "chain": self.chain,
            "trustAnchors": self.trust_anchors,
            "expiresAt": format_time(self.expires_at),
        }

    @classmethod
    def from_json(cls, body: object) -> CertifyResponse:
        """Parse a response body; ValueError names the field that is wrong."""
        if not isinstance(body, dict):
            raise ValueError("certify response must be a JSON object")
        fields = {}
        for name in ("certificate", "chain", "trustAnchors", "expiresAt"):
            value = body.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"certify response field {name!r} must be a non-empty string")
            fields[name] = value
        try:
            expires_at = parse_time(fields["expiresAt"])
        except ValueError:
            raise ValueError(
                f"certify response field 'expiresAt' is not a time: {fields['expiresAt']!r}"
            ) from None
        return cls(fields["certificate"], fields["chain"], fields["trustAnchors"], expires_at)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return moment


def _string(body: dict[str, Any], name: str, limit: int, *, required: bool, how: str) -> str:
    value = body.get(name, None if required else "")
    if value is None and required:
        raise BadRequest(name, f"is required: {how}")
    if not isinstance(value, str):
        raise BadRequest(name, f"must be a string, not {type(value).__name__}: {how}")
    if required and not value:
        raise BadRequest(name, f"must not be empty: {how}")
    if len(value) > limit:
        raise BadRequest(name, f"is {len(value)} characters long; at most {limit} are accepted")
    return value


def parse_certify_request(body: object, trust_domain: str = TRUST_DOMAIN) -> CertifyRequest:
    """Check the shape of a certify request body; BadRequest names the field to fix."""
    if not isinstance(body, dict):
        raise BadRequest("body", 'must be a JSON object {"identity", "csr", "credential"}')
    identity = _string(body, "identity", 253, required=True, how="send the identity to certify")
    problem = check_identity(identity, trust_domain)
    if problem:
        raise BadRequest("identity", problem)
    csr = _string(body, "csr", MAX_CSR_CHARS, required=True, how="send a PEM certificate request")
    credential = _string(
        body,
        "credential",
        MAX_CREDENTIAL_CHARS,
        required=False,
        how="send the bootstrap credential, or an empty string when renewing over mTLS",
    )
    return CertifyRequest(identity, csr, credential)
