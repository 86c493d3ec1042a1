"""The identity endpoint on a cluster: the chart's certificate authority, and who may have
which identity.

The authority comes from the Secret the chart mounts at ``FNMESH_CA_DIR`` (made at
install, or brought by the operator of the cluster): ``ca.crt`` (the trust anchor),
``issuer.crt`` and ``issuer.key`` (the issuer; the chart's own Secret makes the anchor
its own issuer), and ``ca.key`` only when the issuer may be renewed here. Secret volumes
are read-only and shared, so the files are copied into a private folder first.

Credentials are projected service-account tokens, checked with TokenReview:

- a workload gets the identity of the service account its token belongs to
  (``TokenReviewVerifier``);
- the platform's components have fixed identities,
  ``<component>.fnmesh-system.serviceaccount.identity.<trust domain>``, which replica
  proxies expect by default whatever the release is called; only the chart's account of
  that component (``Accounts``) gets one, and nobody gets the API's or the identity
  service's own.
"""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from fnmesh.platform.mesh.identity import (
    AuthorityError,
    CertificateAuthority,
    Identity,
    IdentityRefused,
    parse_identity,
)
from fnmesh.platform.mesh.identity.ca import ANCHOR_CERT, ANCHOR_KEY, ISSUER_CERT, ISSUER_KEY
from fnmesh.platform.mesh.identity.names import COMPONENTS, SYSTEM_NAMESPACE
from fnmesh.platform.mesh.identity.tokenreview import (
    AUDIENCE,
    TokenReviews,
    TokenReviewVerifier,
    check_review,
)

AUTHORITY_FILES = (ANCHOR_CERT, ANCHOR_KEY, ISSUER_CERT, ISSUER_KEY)
REQUIRED_FILES = (ANCHOR_CERT, ISSUER_CERT, ISSUER_KEY)


def load_authority(
    source: Path, private: Path, *, trust_domain: str, now: datetime.datetime
) -> CertificateAuthority:
    """The authority whose files are in ``source``, loaded from a private copy in
    ``private`` (made anew); AuthorityError says which file is missing or wrong."""
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    if missing:
        raise AuthorityError(
            f"{source} lacks {', '.join(missing)}: mount the identity Secret there, with "
            "the keys ca.crt, issuer.crt and issuer.key (make it before installing the chart, "
            "see its README, 'Certificate authority', or let cert-manager make it)"
        )
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(mode=0o700, parents=True)
    for name in AUTHORITY_FILES:
        if (source / name).is_file():
            descriptor = os.open(private / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write((source / name).read_bytes())
    return CertificateAuthority.load_or_create(private, now, trust_domain=trust_domain)


def component_account(identity: Identity, accounts: Mapping[str, str]) -> str | None:
    """The chart's account entitled to ``identity`` when it is a platform component's;
    None for a workload's identity. IdentityRefused for a component nobody may be."""
    if identity.namespace != SYSTEM_NAMESPACE or identity.service_account not in COMPONENTS:
        return None
    account = accounts.get(identity.service_account)
    if account is None:
        raise IdentityRefused(
            f"{identity.name} belongs to the platform itself: no workload may have it"
        )
    return account


class ClusterVerifier:
    """``CredentialVerifier`` on a cluster (see the module's docstring)."""

    def __init__(
        self,
        reviews: TokenReviews,
        *,
        accounts: Mapping[str, str],
        platform_namespace: str,
        trust_domain: str,
        audience: str = AUDIENCE,
    ) -> None:
        self.reviews = reviews
        self.accounts = dict(accounts)
        self.platform_namespace = platform_namespace
        self.trust_domain = trust_domain
        self.audience = audience
        self.workloads = TokenReviewVerifier(reviews, trust_domain=trust_domain, audience=audience)

    async def verify(self, credential: str, requested_identity: str) -> None:
        try:
            identity = parse_identity(requested_identity, self.trust_domain)
        except ValueError as error:
            raise IdentityRefused(str(error)) from None
        account = component_account(identity, self.accounts)
        if account is None:
            await self.workloads.verify(credential, requested_identity)
            return
        if not credential.strip():
            raise IdentityRefused(
                "the credential is empty: send the pod's projected service-account token"
            )
        review = await self.reviews.review(credential.strip(), [self.audience])
        owner = Identity(account, self.platform_namespace, self.trust_domain)
        why = check_review(review, owner, self.audience)
        if why is not None:
            raise IdentityRefused(f"{identity.name} is the {identity.service_account}'s: {why}")
