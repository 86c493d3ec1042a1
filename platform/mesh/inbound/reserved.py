"""The platform's own paths under ``/_fnmesh/``: answered here, never forwarded."""

from __future__ import annotations

from typing import Protocol

from fnmesh.platform.http import Handler, Peer, Request, Response, json_error

RESERVED_PREFIX = b"/_fnmesh/"
HEALTH_PATHS = (b"/_fnmesh/health", b"/_fnmesh/health/")

_OK = Response(200, [(b"content-type", b"text/plain; charset=utf-8")], b"ok\n")


class Draining(Protocol):
    @property
    def draining(self) -> bool: ...


class AnswerReserved:
    """``/_fnmesh/health``: 200 while serving, 503 once draining; other reserved paths 404."""

    def __init__(self, inner: Handler, drain: Draining) -> None:
        self.inner = inner
        self.drain = drain

    async def __call__(self, request: Request, peer: Peer) -> Response:
        target = request.target
        if not target.startswith(RESERVED_PREFIX):
            return await self.inner(request, peer)
        path = target.split(b"?", 1)[0]
        if path in HEALTH_PATHS:
            if self.drain.draining:
                return json_error(503, "the replica is shutting down")
            return Response(_OK.status, list(_OK.headers), _OK.body)
        name = path.decode("latin-1")
        return json_error(404, f"{name} is reserved by the platform and not served")
