"""Bearer tokens: minted once, stored hashed, checked on every call but the public ones
(health, the OpenAPI document, Prometheus metrics).

Tokens are ``Token`` objects in the ``fnmesh-system`` namespace holding the SHA-256 of
the secret, never the secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from fnmesh.platform.api.errors import failure
from fnmesh.platform.store import NotFound, Store

SYSTEM_NAMESPACE = "fnmesh-system"
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/metrics"})
# git clients send the token as HTTP basic auth; the git receiver checks it itself
SELF_AUTHENTICATED_PREFIXES = ("/git/",)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, str] = {}

    def mint(self, name: str, role: str = "admin") -> str:
        """A new secret for ``name`` (replacing an older one); only its hash is kept."""
        secret = f"fnm_{secrets.token_urlsafe(32)}"
        body: dict[str, Any] = {
            "apiVersion": "fnmesh.dev/v1alpha1",
            "kind": "Token",
            "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE},
            "spec": {"sha256": _digest(secret), "role": role},
        }
        try:
            current = self.store.get("Token", SYSTEM_NAMESPACE, name)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.store.update(body)
        except NotFound:
            self.store.create(body)
        self._cache.clear()
        return secret

    def exists(self, name: str) -> bool:
        try:
            self.store.get("Token", SYSTEM_NAMESPACE, name)
        except NotFound:
            return False
        return True

    def verify(self, secret: str) -> str | None:
        """The token's name when ``secret`` is valid."""
        digest = _digest(secret)
        if digest in self._cache:
            return self._cache[digest]
        for item in self.store.list("Token", SYSTEM_NAMESPACE)[0]:
            if hmac.compare_digest(item["spec"]["sha256"], digest):
                self._cache[digest] = item["metadata"]["name"]
                return str(item["metadata"]["name"])
        return None


class BearerAuth:
    """ASGI middleware: 401 with a Status body unless the bearer token is valid."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in PUBLIC_PATHS
            or scope["path"].startswith(SELF_AUTHENTICATED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            response = failure(
                401,
                "missing bearer token: send 'Authorization: Bearer <token>'"
                " (the token is in the platform home's context.json)",
            )
        elif self.tokens.verify(secret.strip()) is None:
            response = failure(
                401,
                "the bearer token was refused: use the token from the platform home's context.json",
            )
        else:
            scope.setdefault("state", {})["token"] = secret.strip()
            await self.app(scope, receive, send)
            return
        response.headers["www-authenticate"] = 'Bearer realm="fnmesh"'
        await response(scope, receive, send)
