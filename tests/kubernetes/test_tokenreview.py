"""Identity on Kubernetes: projected service-account tokens checked with TokenReview."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from typing import Any

import kmock
import kubernetes
import pytest
from kmockapi import ApiThread, KubeApi, configuration

from fnmesh.platform.mesh.identity import IdentityRefused
from fnmesh.platform.mesh.identity.names import Identity
from fnmesh.platform.mesh.identity.tokenreview import (
    AUDIENCE,
    KubernetesTokenReviews,
    Review,
    ReviewUnavailable,
    TokenReviewVerifier,
    check_review,
)

HELLO = "hello.team-a.serviceaccount.identity.fnmesh.local"
HELLO_USER = "system:serviceaccount:team-a:hello"
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"

# What the fake API server knows: token -> (user, audiences the token is bound to)
TOKENS = {
    "hello-token": (HELLO_USER, ["identity.fnmesh.dev"]),
    "hello-api-token": (HELLO_USER, ["https://kubernetes.default.svc"]),
    "other-token": ("system:serviceaccount:team-a:other", ["identity.fnmesh.dev"]),
}


@pytest.mark.parametrize(
    ("review", "why"),
    [
        (Review(True, HELLO_USER, (AUDIENCE,)), None),
        (Review(True, HELLO_USER, ("x", AUDIENCE)), None),
        (Review(False, error="token expired"), "not accepted by the cluster: token expired"),
        (Review(False), "not accepted by the cluster"),
        (Review(True, HELLO_USER, ()), "not bound to the audience 'identity.fnmesh.dev'"),
        (Review(True, HELLO_USER, ("api",)), "mount a projected token"),
        (Review(True, "system:serviceaccount:team-b:hello", (AUDIENCE,)), "belongs to"),
        (Review(True, "system:serviceaccount:team-a:hello2", (AUDIENCE,)), "belongs to"),
        (Review(True, "jane@example.com", (AUDIENCE,)), "not 'system:serviceaccount:team-a:hello'"),
    ],
)
def test_check_review(review: Review, why: str | None) -> None:
    found = check_review(review, Identity("hello", "team-a"))
    if why is None:
        assert found is None
    else:
        assert found is not None and why in found


class FixedReviews:
    def __init__(self, review: Review) -> None:
        self.review_result = review
        self.asked: list[tuple[str, list[str]]] = []

    async def review(self, token: str, audiences: Sequence[str]) -> Review:
        self.asked.append((token, list(audiences)))
        return self.review_result


async def test_the_verifier_asks_for_its_audience_and_checks_the_answer() -> None:
    reviews = FixedReviews(Review(True, HELLO_USER, (AUDIENCE,)))
    verifier = TokenReviewVerifier(reviews)
    await verifier.verify(" tok \n", HELLO)
    assert reviews.asked == [("tok", [AUDIENCE])]
    with pytest.raises(IdentityRefused, match="belongs to"):
        await verifier.verify("tok", "other.team-a.serviceaccount.identity.fnmesh.local")


@pytest.mark.parametrize(
    ("credential", "identity", "why"),
    [
        ("tok", "hello.team-a", "identity"),
        ("tok", "hello.team-a.serviceaccount.identity.other.domain", "trust domain"),
        ("  ", HELLO, "credential is empty"),
    ],
)
async def test_the_verifier_refuses_bad_requests_without_asking(
    credential: str, identity: str, why: str
) -> None:
    reviews = FixedReviews(Review(True, HELLO_USER, (AUDIENCE,)))
    with pytest.raises(IdentityRefused, match=why):
        await TokenReviewVerifier(reviews).verify(credential, identity)
    assert reviews.asked == []


async def test_a_trust_domain_of_its_own() -> None:
    reviews = FixedReviews(Review(True, HELLO_USER, (AUDIENCE,)))
    verifier = TokenReviewVerifier(reviews, trust_domain="cluster.example")
    await verifier.verify("tok", "hello.team-a.serviceaccount.identity.cluster.example")
    with pytest.raises(IdentityRefused, match="trust domain"):
        await verifier.verify("tok", HELLO)


def answer(request: kmock.Request) -> dict[str, Any]:
    """The API server's side: look the token up, intersect the audiences."""
    spec = request.data["spec"]
    known = TOKENS.get(spec["token"])
    status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
    if known is not None:
        user, bound = known
        wanted = spec.get("audiences") or bound
        common = [a for a in wanted if a in bound]
        if common:
            status = {"authenticated": True, "user": {"username": user}, "audiences": common}
        else:
            status = {"authenticated": False, "error": "token audiences are invalid"}
    return {**request.data, "status": status}


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    api = KubeApi()
    api["post " + REVIEWS] << answer
    with ApiThread(api) as thread:
        yield thread


def reviews_at(url: str) -> KubernetesTokenReviews:
    return KubernetesTokenReviews(kubernetes.client.ApiClient(configuration(url, "api")), timeout=2)


async def test_tokens_are_reviewed_by_the_cluster(cluster: ApiThread) -> None:
    verifier = TokenReviewVerifier(reviews_at(cluster.url))
    await verifier.verify("hello-token", HELLO)
    sent = list(cluster.api["post " + REVIEWS])
    assert sent[-1].data["spec"] == {"token": "hello-token", "audiences": ["identity.fnmesh.dev"]}
    with pytest.raises(IdentityRefused, match="not accepted by the cluster: token audiences"):
        await verifier.verify("hello-api-token", HELLO)  # a token for the API server itself
    with pytest.raises(IdentityRefused, match="belongs to 'system:serviceaccount:team-a:other'"):
        await verifier.verify("other-token", HELLO)
    with pytest.raises(IdentityRefused, match="invalid bearer token"):
        await verifier.verify("forged", HELLO)


async def test_a_refusing_api_is_unavailable_not_a_refusal() -> None:
    api = KubeApi()
    api["post " + REVIEWS] << 403 << {"kind": "Status", "code": 403, "message": "forbidden"}
    with ApiThread(api) as cluster, pytest.raises(ReviewUnavailable, match=r"403.*'create'"):
        await reviews_at(cluster.url).review("hello-token", [AUDIENCE])


async def test_an_unreachable_api_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(ReviewUnavailable, match="could not be reached"):
        await reviews_at(f"http://127.0.0.1:{port}").review("hello-token", [AUDIENCE])
