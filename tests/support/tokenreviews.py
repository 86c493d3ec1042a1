"""Service-account tokens the test cluster issues, and its answer to TokenReview.

A real API server signs projected tokens and reviews them; the in-memory one has no
signer, so the harness keeps a table: ``mint`` (the process kubelet, projecting a pod's
token; the harness, for the platform's components) records who a token belongs to and
for which audiences, and ``answer`` -- a kmock reaction to ``POST .../tokenreviews`` --
looks it up and intersects the audiences, as the API server does.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import kmock

REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


class ServiceAccountTokens:
    """token -> (user, audiences), shared by the kubelet's thread and the API's."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def mint(self, namespace: str, account: str, audiences: tuple[str, ...]) -> str:
        token = f"sa-{namespace}-{account}-{secrets.token_urlsafe(18)}"
        self.add(token, namespace, account, audiences)
        return token

    def add(self, token: str, namespace: str, account: str, audiences: tuple[str, ...]) -> None:
        with self._lock:
            self._known[token] = (f"system:serviceaccount:{namespace}:{account}", audiences)

    def answer(self, request: kmock.Request) -> dict[str, Any]:
        spec = request.data["spec"]
        with self._lock:
            known = self._known.get(spec["token"])
        status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
        if known is not None:
            user, bound = known
            wanted = spec.get("audiences") or list(bound)
            common = [a for a in wanted if a in bound]
            if common:
                status = {"authenticated": True, "user": {"username": user}, "audiences": common}
            else:
                status = {"authenticated": False, "error": "token audiences are invalid"}
        return {**request.data, "status": status}
