"""The admin endpoint: ``/metrics`` (Prometheus text), ``/ready`` and ``/live``.

Plain HTTP on a loopback (or pod-local) port, served by ``fnmesh.platform.http`` like the
data path. ``/ready`` answers 200 only while the proxy holds a certificate, is not
draining, and the function runtime answers HTTP (asked at that moment, with a short
timeout); otherwise 503 with the reason. ``/live`` answers 200 while the process runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fnmesh.platform.http import Peer, Request, Response, json_error
from fnmesh.platform.mesh.metrics.exposition import CONTENT_TYPE, Registry, render

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_METRICS = [(b"content-type", CONTENT_TYPE.encode())]

Readiness = Callable[[], Awaitable[str | None]]
"""Returns why the proxy is not ready, or None when it is."""


class AdminEndpoint:
    def __init__(self, registry: Registry, readiness: Readiness) -> None:
        self.registry = registry
        self.readiness = readiness

    async def __call__(self, request: Request, peer: Peer) -> Response:
        path = request.target.split(b"?", 1)[0]
        if request.method not in ("GET", "HEAD"):
            return json_error(405, "the admin endpoint answers GET only")
        if path == b"/metrics":
            return Response(200, list(_METRICS), render(self.registry.families()))
        if path == b"/live":
            return Response(200, list(_TEXT), b"live\n")
        if path == b"/ready":
            why = await self.readiness()
            if why is not None:
                return json_error(503, f"not ready: {why}")
            return Response(200, list(_TEXT), b"ready\n")
        return json_error(404, "the admin endpoint serves /metrics, /ready and /live")
