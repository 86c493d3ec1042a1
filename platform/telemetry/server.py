"""The control listener reports arrive on: mTLS, one POST a second per reporter.

``POST /v1/stats`` takes a report from a replica proxy or the activator; the caller must
present a certificate of the mesh (checked by the TLS layer) whose namespace is the
report's namespace (a replica cannot speak for another namespace's revisions), or be a
platform component. The reply tells the reporter which tap filters are active.
"""

from __future__ import annotations

import json
import logging

from fnmesh.platform.http import Peer, Request, Response
from fnmesh.platform.mesh.identity.names import SYSTEM_NAMESPACE, parse_identity
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.report import ReportError, parse_report

log = logging.getLogger("fnmesh.telemetry")
JSON = [(b"content-type", b"application/json")]


def _reply(status: int, body: object) -> Response:
    return Response(status=status, headers=list(JSON), body=json.dumps(body).encode())


class StatsHandler:
    def __init__(self, hub: TelemetryHub) -> None:
        self.hub = hub

    async def __call__(self, request: Request, peer: Peer) -> Response:
        if request.target.split(b"?", 1)[0] != b"/v1/stats":
            return _reply(404, {"error": "unknown path: the stats endpoint is POST /v1/stats"})
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
