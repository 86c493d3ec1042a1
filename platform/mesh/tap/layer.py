"""The tap layer: while a session is open, requests it admits leave three events each.

Without a session the cost is one attribute check. A tapped request without an
``x-request-id`` gets one here, so the function runtime logs and echoes the same id.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fnmesh.platform.http import Handler, Peer, Request, Response
from fnmesh.platform.mesh.tap.recorder import TapEvent, TapRecorder

REQUEST_ID_HEADER = b"x-request-id"


class TapRequests:
    def __init__(
        self,
        inner: Handler,
        recorder: TapRecorder,
        *,
        destination: str,
        revision: str,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.destination = destination
        self.revision = revision
        self.clock = clock
        self.wall_clock = wall_clock

    async def __call__(self, request: Request, peer: Peer) -> Response:
        recorder = self.recorder
        if recorder.session is None:
            return await self.inner(request, peer)
        start = self.clock()
        path = request.target.split(b"?", 1)[0].decode("latin-1")
        if not recorder.admit(start, request.method, path):
            return await self.inner(request, peer)
        request_id = request.header(REQUEST_ID_HEADER)
        if request_id is None:
            request_id = secrets.token_hex(8).encode()
            request.headers.append((REQUEST_ID_HEADER, request_id))
        common: TapEvent = {
            "id": request_id.decode("latin-1"),
            "method": request.method,
            "authority": (request.header(b"host") or b"").decode("latin-1"),
            "path": path,
            "tls": peer.tls,
            "source": peer.identity,
            "destination": self.destination,
            "revision": self.revision,
        }
        recorder.record(
            {
                "type": "request-init",
                "time": self.wall_clock(),
                **common,
                "bytes": len(request.body),
            }
        )
        try:
            response = await self.inner(request, peer)
        except Exception:
            self._answered(common, 500, start, 0)
            raise
        self._answered(common, response.status, start, len(response.body))
        return response

    def _answered(self, common: TapEvent, status: int, start: float, size: int) -> None:
        latency_ms = round((self.clock() - start) * 1000.0, 3)
        time = self.wall_clock()
        self.recorder.record({"type": "response-init", "time": time, **common, "status": status})
        self.recorder.record(
            {
                "type": "response-end",
                "time": time,
                **common,
                "status": status,
                "latencyMs": latency_ms,
                "bytes": size,
            }
        )
