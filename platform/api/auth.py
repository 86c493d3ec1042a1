"""Bearer tokens: every call but the public ones (health, the OpenAPI document) needs a
valid token, and each route needs its role (``fnmesh.platform.api.access``).

Tokens are ``Token`` objects in the ``fnmesh-system`` namespace holding the SHA-256 of
the secret, never the secret itself (``fnmesh.platform.store.tokens``). An unknown,
expired or revoked token is answered 401 with the reason; the verified grant is put on
the request (``scope["state"]["grant"]``) for the route's check.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from fnmesh.platform.api.errors import failure
from fnmesh.platform.store.tokens import SYSTEM_NAMESPACE, Tokens

__all__ = ["PUBLIC_PATHS", "SYSTEM_NAMESPACE", "BearerAuth", "Tokens", "bearer"]

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
# git clients send the token as HTTP basic auth; the git receiver checks it itself
SELF_AUTHENTICATED_PREFIXES = ("/git/",)


def bearer(header: str) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header, or None."""
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


class BearerAuth:
    """ASGI middleware: 401 with a Status body unless the bearer token is valid now."""

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
        secret = bearer(header)
        if secret is None:
            response = failure(
                401,
                "missing bearer token: send 'Authorization: Bearer <token>'"
                " (the token is in the platform home's context.json)",
            )
        else:
            found = self.tokens.authenticate(secret)
            if not isinstance(found, str):
                scope.setdefault("state", {})["grant"] = found
                await self.app(scope, receive, send)
                return
            response = failure(401, f"the bearer token was refused: {found}")
        response.headers["www-authenticate"] = 'Bearer realm="fnmesh"'
        await response(scope, receive, send)
