"""Workload identity: trust anchor, issuer, CSRs, bootstrap credentials, renewal, TLS.

Linkerd's model. The platform holds a trust anchor (root) and an issuer (intermediate);
each workload makes its own ECDSA P-256 key, sends a CSR plus a bootstrap credential to
the identity endpoint, and gets a 24 h certificate whose only name is its identity,
``<serviceaccount>.<namespace>.serviceaccount.identity.fnmesh.local``; it renews at 70 %
of the lifetime by presenting its current certificate over mTLS.

What lives where: ``names`` (identity names, pure), ``ca`` (anchor and issuer, on disk),
``csr`` (keys, CSRs and the rules for signing one), ``tokens`` (bootstrap credentials),
``certify`` (the service's decision), ``wire`` (the JSON shapes), ``service`` (the aiohttp
endpoint; import it from its module, it is the only one that needs ``aiohttp.web``),
``client`` (a workload's certificate and SSL contexts), ``renewal`` (when to renew, pure,
and the loop), ``tls`` (SSL contexts from PEM, the peer's identity).
"""

from fnmesh.platform.mesh.identity.ca import (
    LEAF_LIFETIME,
    CertificateAuthority,
    IssuedCertificate,
    Issuer,
    TrustAnchor,
)
from fnmesh.platform.mesh.identity.certify import Certifier, InProcessEndpoint
from fnmesh.platform.mesh.identity.client import IdentityClient, IdentityEndpoint
from fnmesh.platform.mesh.identity.csr import KeyAndCsr, check_csr, generate_key, make_csr
from fnmesh.platform.mesh.identity.endpoint import HttpIdentityEndpoint
from fnmesh.platform.mesh.identity.errors import (
    AuthorityError,
    BadRequest,
    IdentityError,
    IdentityRefused,
)
from fnmesh.platform.mesh.identity.names import (
    SYSTEM_NAMESPACE,
    TRUST_DOMAIN,
    Identity,
    check_identity,
    component_identity,
    identity_name,
    parse_identity,
)
from fnmesh.platform.mesh.identity.renewal import RenewalPolicy, Validity
from fnmesh.platform.mesh.identity.tls import (
    TlsCredentials,
    client_context,
    peer_identity,
    server_context,
)
from fnmesh.platform.mesh.identity.tokens import (
    CredentialVerifier,
    OneTimeTokenVerifier,
    TokenIssuer,
)
from fnmesh.platform.mesh.identity.wire import CertifyRequest, CertifyResponse

__all__ = [
    "LEAF_LIFETIME",
    "SYSTEM_NAMESPACE",
    "TRUST_DOMAIN",
    "AuthorityError",
    "BadRequest",
    "CertificateAuthority",
    "Certifier",
    "CertifyRequest",
    "CertifyResponse",
    "CredentialVerifier",
    "HttpIdentityEndpoint",
    "Identity",
    "IdentityClient",
    "IdentityEndpoint",
    "IdentityError",
    "IdentityRefused",
    "InProcessEndpoint",
    "IssuedCertificate",
    "Issuer",
    "KeyAndCsr",
    "OneTimeTokenVerifier",
    "RenewalPolicy",
    "TlsCredentials",
    "TokenIssuer",
    "TrustAnchor",
    "Validity",
    "check_csr",
    "check_identity",
    "client_context",
    "component_identity",
    "generate_key",
    "identity_name",
    "make_csr",
    "parse_identity",
    "peer_identity",
    "server_context",
]
