"""Bootstrap credentials on Kubernetes: projected service-account tokens, checked by the
cluster's TokenReview API.

A replica pod mounts a token projected for the audience ``identity.fnmesh.dev`` and sends
it with its CSR. The identity service asks the API server who the token belongs to
(``authentication.k8s.io/v1`` TokenReview, with that audience) and certifies the request
only when the token is authenticated, bound to the audience, and its user is
``system:serviceaccount:<namespace>:<serviceaccount>`` of the identity requested. A token
for another audience (say, one meant for the API server itself) is refused, so a stolen
identity token is good for nothing else, and vice versa.

``check_review`` is the decision (pure); ``KubernetesTokenReviews`` asks the cluster with
the official client; ``TokenReviewVerifier`` is the ``CredentialVerifier`` joining them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client as k8s

from fnmesh.platform.mesh.identity.errors import AuthorityError, IdentityRefused
from fnmesh.platform.mesh.identity.names import TRUST_DOMAIN, Identity, parse_identity

AUDIENCE = "identity.fnmesh.dev"
USER_PREFIX = "system:serviceaccount:"


class ReviewUnavailable(AuthorityError):
    """The TokenReview API could not answer; the workload should try again later."""


@dataclass(frozen=True, slots=True)
class Review:
    """What the API server said about a token."""

    authenticated: bool
    username: str = ""
    audiences: tuple[str, ...] = ()
    error: str = ""


class TokenReviews(Protocol):
    """Asks the cluster who a token belongs to, for the given audiences."""

    async def review(self, token: str, audiences: Sequence[str]) -> Review: ...


def service_account_user(identity: Identity) -> str:
    """The Kubernetes user name of the service account behind ``identity``."""
    return f"{USER_PREFIX}{identity.namespace}:{identity.service_account}"


def check_review(review: Review, identity: Identity, audience: str = AUDIENCE) -> str | None:
    """Why ``review`` does not entitle its token to ``identity``, or None when it does."""
    if not review.authenticated:
        why = f": {review.error}" if review.error else ""
        return f"the service-account token was not accepted by the cluster{why}"
    if audience not in review.audiences:
        return (
            f"the service-account token is not bound to the audience {audience!r}: mount a "
            f"projected token with 'audience: {audience}'"
        )
    wanted = service_account_user(identity)
    if review.username != wanted:
        return (
            f"the token belongs to {review.username!r}, not {wanted!r}: request the identity "
            "of the service account the pod runs as"
        )
    return None


class TokenReviewVerifier:
    """``CredentialVerifier`` for Kubernetes: the credential is a projected SA token."""

    def __init__(
        self,
        reviews: TokenReviews,
        *,
        trust_domain: str = TRUST_DOMAIN,
        audience: str = AUDIENCE,
    ) -> None:
        self.reviews = reviews
        self.trust_domain = trust_domain
        self.audience = audience

    async def verify(self, credential: str, requested_identity: str) -> None:
        try:
            identity = parse_identity(requested_identity, self.trust_domain)
        except ValueError as error:
            raise IdentityRefused(str(error)) from None
        if not credential.strip():
            raise IdentityRefused(
                "the credential is empty: send the pod's projected service-account token"
            )
        review = await self.reviews.review(credential.strip(), [self.audience])
        why = check_review(review, identity, self.audience)
        if why is not None:
            raise IdentityRefused(why)


class KubernetesTokenReviews:
    """``TokenReviews`` through the official client (the caller needs create tokenreviews)."""

    def __init__(self, api_client: Any, *, timeout: float = 5.0) -> None:
        self.api = k8s.AuthenticationV1Api(api_client)
        self.timeout = timeout

    async def review(self, token: str, audiences: Sequence[str]) -> Review:
        body = k8s.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=k8s.V1TokenReviewSpec(token=token, audiences=list(audiences)),
        )
        try:
            answer = await asyncio.to_thread(
                self.api.create_token_review, body, _request_timeout=self.timeout
            )
        except k8s.ApiException as error:
            raise ReviewUnavailable(
                f"the TokenReview API refused the review ({error.status} {error.reason}): "
                "the identity service needs 'create' on authentication.k8s.io tokenreviews"
            ) from None
        except Exception as error:  # connection refused, timeouts: the cluster is unreachable
            raise ReviewUnavailable(
                f"the TokenReview API could not be reached: {error}; try again"
            ) from None
        return _review_of(answer)


def _review_of(answer: Any) -> Review:
    status = getattr(answer, "status", None)
    if status is None:
        return Review(authenticated=False, error="the review came back without a status")
    user = getattr(status, "user", None)
    username = getattr(user, "username", None) if user is not None else None
    return Review(
        authenticated=bool(getattr(status, "authenticated", False)),
        username=str(username or ""),
        audiences=tuple(str(a) for a in (getattr(status, "audiences", None) or ())),
        error=str(getattr(status, "error", None) or ""),
    )
