"""The identity service's decision: may this caller have a certificate for this identity?

Modelled on Linkerd's identity service: the CSR must name exactly the requested identity,
and the caller must prove it is entitled to that identity. Two proofs are accepted:

- a **bootstrap credential** (embedded: a one-time token minted by the supervisor;
  Kubernetes: a service-account token) that the ``CredentialVerifier`` accepts for the
  requested identity;
- for a **renewal**, the workload's current certificate, presented on the TLS connection
  to the identity endpoint (mTLS) and verified against the trust anchor: a connection
  whose peer identity is the requested identity may renew it with no credential at all.

Renewing over mTLS keeps no renewal secret anywhere: the workload's key, which it holds
anyway, is the proof. A workload whose certificate has expired (a missed renewal) must
bootstrap again with a credential.
"""

from __future__ import annotations

import ssl
from datetime import datetime, timedelta

from fnmesh.platform.mesh.identity.ca import LEAF_LIFETIME, CertificateAuthority
from fnmesh.platform.mesh.identity.certificate import IssuedCertificate
from fnmesh.platform.mesh.identity.clock import Clock, system_clock
from fnmesh.platform.mesh.identity.csr import check_csr, load_csr
from fnmesh.platform.mesh.identity.errors import BadRequest, IdentityRefused
from fnmesh.platform.mesh.identity.tokens import CredentialVerifier
from fnmesh.platform.mesh.identity.wire import CertifyRequest, CertifyResponse


class Certifier:
    """Checks certify requests and signs them with the authority's issuer."""

    def __init__(
        self,
        authority: CertificateAuthority,
        verifier: CredentialVerifier,
        *,
        lifetime: timedelta = LEAF_LIFETIME,
    ) -> None:
        self._authority = authority
        self.verifier = verifier
        self.lifetime = lifetime

    @property
    def authority(self) -> CertificateAuthority:
        return self._authority

    def issue(self, csr_pem: str, identity: str, now: datetime) -> IssuedCertificate:
        """Sign without authentication: for the service's own certificate and in-process use."""
        self._authority = self._authority.renew_issuer_if_due(now)
        return self._authority.issuer.sign(
            check_csr(csr_pem, identity), identity, now, self.lifetime
        )

    async def certify(
        self, request: CertifyRequest, *, peer_identity: str | None, now: datetime
    ) -> CertifyResponse:
        """A certificate for ``request.identity``, or IdentityRefused / BadRequest saying why.

        The CSR is checked before the credential, so a bad CSR never uses up a one-time token.
        """
        try:
            csr = load_csr(request.csr)
        except ValueError as error:
            raise BadRequest("csr", str(error)) from None
        check_csr(csr, request.identity)
        if peer_identity == request.identity:
            pass  # a renewal: the connection presents a valid certificate for this identity
        elif request.credential:
            await self.verifier.verify(request.credential, request.identity)
        elif peer_identity is not None:
            raise IdentityRefused(
                f"the connection's certificate is for {peer_identity!r}, not"
                f" {request.identity!r}: send a credential for {request.identity!r}"
            )
        else:
            raise IdentityRefused(
                f"no credential for {request.identity!r}: send the bootstrap credential, or"
                " renew over mTLS presenting the current certificate"
            )
        self._authority = self._authority.renew_issuer_if_due(now)
        issued = self._authority.issuer.sign(csr, request.identity, now, self.lifetime)
        return CertifyResponse(
            certificate=issued.certificate,
            chain=issued.chain,
            trust_anchors=self._authority.trust_anchors_pem,
            expires_at=issued.not_after,
        )


class InProcessEndpoint:
    """An ``IdentityEndpoint`` for components in the identity service's own process.

    It trusts its caller with the identity it asks for (the CSR is still checked): a
    process that holds the issuer could sign anything anyway. Workloads in other
    processes use the HTTPS endpoint.
    """

    def __init__(self, certifier: Certifier, clock: Clock = system_clock) -> None:
        self.certifier = certifier
        self.clock = clock

    async def certify(
        self, request: CertifyRequest, ssl_context: ssl.SSLContext
    ) -> CertifyResponse:
        return await self.certifier.certify(
            request, peer_identity=request.identity, now=self.clock()
        )
