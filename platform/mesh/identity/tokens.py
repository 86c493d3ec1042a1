"""Bootstrap credentials: how a workload proves who it is before it has a certificate.

The identity service asks a ``CredentialVerifier`` whether a credential entitles its
bearer to an identity. In the embedded mode the supervisor mints a **one-time token**
bound to the replica's identity, with an expiry, and hands it to the replica when it
starts; the first certify request redeems it. (On Kubernetes a verifier checking a
projected service-account token with TokenReview plugs in behind the same protocol.)

Renewals do not need the token again: a workload renews by presenting its current,
still-valid certificate on the TLS connection to the identity endpoint (see ``certify``).

Tokens are kept in memory as SHA-256 digests only, so the table never holds a usable token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from fnmesh.platform.mesh.identity.clock import Clock, require_aware, system_clock
from fnmesh.platform.mesh.identity.errors import IdentityRefused

TOKEN_TTL = timedelta(minutes=5)
_PREFIX = "fnmt_"


class CredentialVerifier(Protocol):
    """Decides whether ``credential`` entitles its bearer to ``requested_identity``."""

    async def verify(self, credential: str, requested_identity: str) -> None:
        """Return if it does; raise IdentityRefused with the reason if it does not."""
        ...


@dataclass(frozen=True, slots=True)
class _Grant:
    identity: str
    expires_at: datetime


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenIssuer:
    """One-time tokens bound to an identity, each redeemable once before it expires."""

    def __init__(self) -> None:
        self._outstanding: dict[bytes, _Grant] = {}
        self._redeemed: dict[bytes, _Grant] = {}  # kept until expiry to say "already used"

    def __len__(self) -> int:
        return len(self._outstanding)

    def mint(self, identity: str, now: datetime, ttl: timedelta = TOKEN_TTL) -> str:
        require_aware(now)
        if ttl <= timedelta(0):
            raise ValueError(f"ttl must be positive, not {ttl}")
        self._forget_expired(now)
        token = _PREFIX + secrets.token_urlsafe(32)
        self._outstanding[_digest(token)] = _Grant(identity, now + ttl)
        return token

    def redeem(self, token: str, now: datetime, *, identity: str | None = None) -> str:
        """The identity ``token`` was minted for; the token is then used up.

        With ``identity`` given, a token minted for another identity is refused and stays
        unused. IdentityRefused says why a token is refused.
        """
        require_aware(now)
        digest = _digest(token)
        grant = self._outstanding.get(digest)
        if grant is None:
            used = self._redeemed.get(digest)
            if used is not None and now < used.expires_at:
                raise IdentityRefused(
                    "token was already used: a bootstrap token is good for one certificate;"
                    " renew with the current certificate, or get a new token"
                )
            raise IdentityRefused("unknown token: use the token minted for this workload")
        if now >= grant.expires_at:
            del self._outstanding[digest]
            raise IdentityRefused(
                f"token expired at {grant.expires_at.isoformat()}: get a new token"
            )
        if identity is not None and grant.identity != identity:
            raise IdentityRefused(
                f"token is for {grant.identity!r}, not {identity!r}: request the identity the"
                " token was minted for"
            )
        del self._outstanding[digest]
        self._redeemed[digest] = grant
        return grant.identity

    def _forget_expired(self, now: datetime) -> None:
        for table in (self._outstanding, self._redeemed):
            for digest in [d for d, grant in table.items() if now >= grant.expires_at]:
                del table[digest]


class OneTimeTokenVerifier:
    """``CredentialVerifier`` for the embedded mode: redeems tokens from a ``TokenIssuer``."""

    def __init__(self, tokens: TokenIssuer, clock: Clock = system_clock) -> None:
        self.tokens = tokens
        self.clock = clock

    async def verify(self, credential: str, requested_identity: str) -> None:
        self.tokens.redeem(credential, self.clock(), identity=requested_identity)
