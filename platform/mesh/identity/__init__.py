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
and the loop), ``tls`` (SSL contexts from PEM, the peer's identity), ``certificate`` (the
fields a workload reads from its certificate, pure), ``libcrypto`` (a workload's key and
CSR through the OpenSSL library ``ssl`` has loaded).

The names below are loaded when first used: a replica proxy needs the client side only
and never loads ``cryptography`` (the CA, CSR checks and the service do).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fnmesh.platform.mesh.identity.ca import (
        LEAF_LIFETIME,
        CertificateAuthority,
        Issuer,
        TrustAnchor,
    )
    from fnmesh.platform.mesh.identity.certificate import IssuedCertificate
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

_MODULES = {
    "LEAF_LIFETIME": "ca",
    "CertificateAuthority": "ca",
    "IssuedCertificate": "certificate",
    "Issuer": "ca",
    "TrustAnchor": "ca",
    "Certifier": "certify",
    "InProcessEndpoint": "certify",
    "IdentityClient": "client",
    "IdentityEndpoint": "client",
    "KeyAndCsr": "csr",
    "check_csr": "csr",
    "generate_key": "csr",
    "make_csr": "csr",
    "HttpIdentityEndpoint": "endpoint",
    "AuthorityError": "errors",
    "BadRequest": "errors",
    "IdentityError": "errors",
    "IdentityRefused": "errors",
    "SYSTEM_NAMESPACE": "names",
    "TRUST_DOMAIN": "names",
    "Identity": "names",
    "check_identity": "names",
    "component_identity": "names",
    "identity_name": "names",
    "parse_identity": "names",
    "RenewalPolicy": "renewal",
    "Validity": "renewal",
    "TlsCredentials": "tls",
    "client_context": "tls",
    "peer_identity": "tls",
    "server_context": "tls",
    "CredentialVerifier": "tokens",
    "OneTimeTokenVerifier": "tokens",
    "TokenIssuer": "tokens",
    "CertifyRequest": "wire",
    "CertifyResponse": "wire",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next use finds it without asking again
    return value


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
