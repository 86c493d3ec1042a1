"""The mesh's control listener (mTLS): reports in, destinations out.

``POST /v1/stats`` takes a report from a replica proxy or the activator; the caller must
present a certificate of the mesh (checked by the TLS layer) whose namespace is the
report's namespace (a replica cannot speak for another namespace's revisions), or be a
platform component. The reply tells the reporter which tap filters are active.

``GET /v1/destinations/<namespace>/<function>[?activate=<revision>]`` tells a proxy's
egress where a function's revisions and replicas are (and, with ``activate``, first
waits until that revision, scaled to zero, has a ready replica).

``/v1/golden/...`` and ``/v1/taps...`` are the read API (``reads``), when it is served.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

from fnmesh.platform.http import Peer, Request, Response
from fnmesh.platform.mesh.identity.names import SYSTEM_NAMESPACE, parse_identity
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.reads import ReadHandler
from fnmesh.platform.telemetry.report import ReportError, parse_report

log = logging.getLogger("fnmesh.telemetry")
JSON = [(b"content-type", b"application/json")]
DESTINATIONS = b"/v1/destinations/"


def _reply(status: int, body: object) -> Response:
    return Response(status=status, headers=list(JSON), body=json.dumps(body).encode())


class Destinations(Protocol):
    async def lookup(
        self, namespace: str, function: str, activate: str | None
    ) -> dict[str, Any] | None: ...


class StatsHandler:
    def __init__(
        self,
        hub: TelemetryHub,
        destinations: Destinations | None = None,
        reads: ReadHandler | None = None,
    ) -> None:
        self.hub = hub
        self.destinations = destinations
        self.reads = reads

    async def __call__(self, request: Request, peer: Peer) -> Response:
        path, _, query = request.target.partition(b"?")
        if path.startswith(DESTINATIONS) and self.destinations is not None:
            return await self._destination(path, query, peer)
        if self.reads is not None and self.reads.serves(path):
            return await self.reads(request, peer)
        if path != b"/v1/stats":
            known = ["POST /v1/stats"]
            if self.destinations is not None:
                known.append("GET /v1/destinations/<namespace>/<function>")
            if self.reads is not None:
                known += ["GET /v1/golden/<namespace>/<revision>", "/v1/taps"]
            return _reply(404, {"error": f"unknown path: {', '.join(known)}"})
        if request.method != "POST":
            return _reply(405, {"error": "use POST"})
        if not peer.identity:
            return _reply(403, {"error": "a mesh client certificate is required"})
        try:
            report = parse_report(json.loads(request.body))
        except (ValueError, ReportError) as error:
            return _reply(400, {"error": f"bad report: {error}"})
        try:
            who = parse_identity(peer.identity)
        except ValueError as error:
            return _reply(403, {"error": f"unknown caller identity: {error}"})
        if who.namespace not in (report.namespace, SYSTEM_NAMESPACE):
            return _reply(
                403, {"error": f"{peer.identity} may not report for namespace {report.namespace!r}"}
            )
        return _reply(200, self.hub.ingest(report))

    async def _destination(self, path: bytes, query: bytes, peer: Peer) -> Response:
        assert self.destinations is not None
        if not peer.identity:
            return _reply(403, {"error": "a mesh client certificate is required"})
        parts = unquote(path[len(DESTINATIONS) :].decode("ascii", "replace")).split("/")
        if len(parts) != 2 or not all(parts):
            return _reply(400, {"error": "ask for /v1/destinations/<namespace>/<function>"})
        activate = parse_qs(query.decode("ascii", "replace")).get("activate", [None])[0]
        found = await self.destinations.lookup(parts[0], parts[1], activate)
        if found is None:
            return _reply(404, {"error": f"function {parts[0]}/{parts[1]} not found"})
        return _reply(200, found)
