"""The artifact service refuses a request that did not come over TLS, token unread."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fnmesh.platform.cluster.artifacts import ArtifactService
from fnmesh.platform.mesh.identity.tokenreview import Review

DIGEST = "sha256:" + "a" * 64


class Reviews:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def review(self, token: str, audiences: Sequence[str]) -> Review:
        self.seen.append(token)
        return Review(authenticated=False, error="unknown token")


async def get(service: ArtifactService, scheme: str) -> tuple[int, dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": f"/artifacts/{DIGEST}",
        "raw_path": f"/artifacts/{DIGEST}".encode(),
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer projected-token"), (b"host", b"api")],
        "client": ("10.0.0.9", 40000),
        "server": ("10.0.0.1", 8444),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await service.app()(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def service(tmp_path: Path, reviews: Reviews) -> ArtifactService:
    return ArtifactService(
        store=None,  # type: ignore[arg-type]  # never reached in these tests
        reviews=reviews,
        artifact_dir=lambda digest: tmp_path / "artifacts" / digest,
        environment_dir=lambda key: tmp_path / "environments" / key,
        cache=tmp_path / "cache",
    )


async def test_a_plaintext_request_is_refused_before_its_token_is_looked_at(
    tmp_path: Path,
) -> None:
    reviews = Reviews()
    status, body = await get(service(tmp_path, reviews), "http")
    assert status == 403
    assert "answers over https only" in body["message"]
    assert reviews.seen == []


async def test_over_tls_the_token_is_reviewed(tmp_path: Path) -> None:
    reviews = Reviews()
    status, body = await get(service(tmp_path, reviews), "https")
    assert status == 401
    assert "not accepted by the cluster" in body["message"]
    assert reviews.seen == ["projected-token"]
