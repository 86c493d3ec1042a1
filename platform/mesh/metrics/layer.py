"""The layer that counts every request it passes and times its response."""

from __future__ import annotations

from collections.abc import Callable

from fnmesh.platform.http import Handler, Peer, Request, Response
from fnmesh.platform.mesh.metrics.responses import ResponseMetrics


class RecordResponses:
    """Counts the request, then the response by status and caller, with its latency.

    A handler that raises is recorded as the 500 the server will answer with; a cancelled
    request (the replica is shutting down past its drain timeout) has no response and is
    not recorded as one.
    """

    def __init__(
        self, inner: Handler, metrics: ResponseMetrics, clock: Callable[[], float]
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, request: Request, peer: Peer) -> Response:
        client_id = peer.identity or ""
        metrics = self.metrics
        metrics.request(client_id)
        clock = self.clock
        start = clock()
        try:
            response = await self.inner(request, peer)
        except Exception:
            metrics.response(500, client_id, (clock() - start) * 1000.0)
            raise
        metrics.response(response.status, client_id, (clock() - start) * 1000.0)
        return response
