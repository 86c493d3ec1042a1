"""A workload's side of identity: get a certificate, keep it fresh, hand out SSL contexts.

``IdentityClient`` makes a key (with the process' own libcrypto: see ``libcrypto``), asks
the identity endpoint for a certificate (the first time with its bootstrap credential,
later presenting its current certificate over mTLS), and renews at 70 % of the lifetime.
It owns one server and one client ``SSLContext``; a renewal loads the new certificate
into those same objects, so listeners and connection pools built on them pick it up for
new handshakes while open connections carry on.

The trust anchors come from configuration (like Linkerd's trust-anchors setting), never
from the endpoint's answer: a workload trusts only what it was told to trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from fnmesh.platform.mesh.identity.certificate import (
    IssuedCertificate,
    read_certificate,
    request_public_key,
)
from fnmesh.platform.mesh.identity.clock import Clock, Sleep, system_clock, system_sleep
from fnmesh.platform.mesh.identity.errors import IdentityError
from fnmesh.platform.mesh.identity.libcrypto import new_key_and_csr
from fnmesh.platform.mesh.identity.renewal import (
    DEFAULT_POLICY,
    RenewalPolicy,
    Validity,
    renew_forever,
)
from fnmesh.platform.mesh.identity.tls import (
    TlsCredentials,
    client_context,
    load_credentials,
    server_context,
)
from fnmesh.platform.mesh.identity.wire import CertifyRequest, CertifyResponse


class IdentityEndpoint(Protocol):
    """Where certificates come from."""

    async def certify(
        self, request: CertifyRequest, ssl_context: ssl.SSLContext
    ) -> CertifyResponse:
        """Ask for a certificate over a connection made with ``ssl_context``.

        Raises IdentityRefused (refused), BadRequest (malformed) or IdentityError.
        """
        ...


def accept_certificate(response: CertifyResponse, identity: str, csr_pem: str) -> IssuedCertificate:
    """Check the answer is a certificate for the CSR's key and our identity; IdentityError
    if not."""
    try:
        leaf = read_certificate(response.certificate)
        requested_key = request_public_key(csr_pem)
    except (ValueError, UnicodeError) as error:
        raise IdentityError(f"the identity service sent an unusable certificate: {error}") from None
    if leaf.public_key != requested_key:
        raise IdentityError("the identity service sent a certificate for another key")
    if list(leaf.dns_names) != [identity]:
        raise IdentityError(f"the identity service sent a certificate not for {identity!r}")
    return IssuedCertificate(
        identity=identity,
        certificate=response.certificate,
        chain=response.chain,
        not_before=leaf.not_before,
        not_after=leaf.not_after,
    )


class IdentityClient:
    """One workload identity: its current certificate and the SSL contexts that present it."""

    def __init__(
        self,
        identity: str,
        *,
        trust_anchors_pem: str,
        endpoint: IdentityEndpoint,
        credential: str | Callable[[], str],
        clock: Clock = system_clock,
        sleep: Sleep = system_sleep,
        policy: RenewalPolicy = DEFAULT_POLICY,
        scratch: Path | None = None,
    ) -> None:
        self.identity = identity
        self.trust_anchors_pem = trust_anchors_pem
        self.endpoint = endpoint
        self._credential = credential
        self.clock = clock
        self.sleep = sleep
        self.policy = policy
        self.scratch = scratch
        self.certificates_issued = 0
        self._certificate: IssuedCertificate | None = None
        self._server: ssl.SSLContext | None = None
        self._client: ssl.SSLContext | None = None
        self._bootstrap: ssl.SSLContext | None = None
        self._lock = asyncio.Lock()
        self._renewals: asyncio.Task[None] | None = None

    @property
    def certificate(self) -> IssuedCertificate | None:
        return self._certificate

    @property
    def expiration_timestamp(self) -> float | None:
        """When the current certificate ends, in Unix seconds (None before the first one)."""
        return self._certificate.not_after.timestamp() if self._certificate else None

    def server_context(self) -> ssl.SSLContext:
        """Accepts only clients with a certificate chaining to the trust anchor."""
        if self._server is None:
            raise RuntimeError(f"{self.identity} has no certificate yet: await start() first")
        return self._server

    def client_context(self) -> ssl.SSLContext:
        """Presents this identity; pass ``server_hostname=<expected peer identity>``."""
        if self._client is None:
            raise RuntimeError(f"{self.identity} has no certificate yet: await start() first")
        return self._client

    async def start(self) -> None:
        """Get the first certificate (errors propagate), then keep renewing it."""
        await self.renew()
        if self._renewals is None:
            self._renewals = asyncio.create_task(
                renew_forever(
                    self._validity,
                    self.renew,
                    clock=self.clock,
                    sleep=self.sleep,
                    policy=self.policy,
                    what=f"certificate for {self.identity}",
                )
            )

    async def close(self) -> None:
        """Stop renewing; the contexts stay usable until the certificate expires."""
        if self._renewals is not None:
            self._renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewals
            self._renewals = None

    async def renew(self) -> None:
        """Get a new certificate with a new key now, and load it into the contexts."""
        async with self._lock:
            key_pem, csr_pem = new_key_and_csr(self.identity)
            context, credential = self._proof()
            response = await self.endpoint.certify(
                CertifyRequest(self.identity, csr_pem, credential), context
            )
            issued = accept_certificate(response, self.identity, csr_pem)
            credentials = TlsCredentials(issued.chain_pem, key_pem)
            if self._server is None or self._client is None:
                self._server = server_context(
                    self.trust_anchors_pem, credentials, scratch=self.scratch
                )
                self._client = client_context(
                    self.trust_anchors_pem, credentials, scratch=self.scratch
                )
            else:
                load_credentials(self._server, credentials, scratch=self.scratch)
                load_credentials(self._client, credentials, scratch=self.scratch)
            self._certificate = issued
            self.certificates_issued += 1

    def _proof(self) -> tuple[ssl.SSLContext, str]:
        """How to prove who we are: the current certificate while valid, else the credential."""
        current = self._certificate
        if (
            current is not None
            and self._client is not None
            and current.not_before <= self.clock() < current.not_after
        ):
            return self._client, ""
        if self._bootstrap is None:
            self._bootstrap = client_context(self.trust_anchors_pem, scratch=self.scratch)
        credential = self._credential if isinstance(self._credential, str) else self._credential()
        return self._bootstrap, credential

    def _validity(self) -> Validity:
        assert self._certificate is not None
        return Validity(self._certificate.not_before, self._certificate.not_after)
