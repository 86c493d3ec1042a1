"""The hub's read API (on its mTLS listener, for the platform's readers only).

::

    GET    /v1/golden/<namespace>/<revision>?window=<seconds, 1-600, default 60>
           -> 200 {"namespace", "revision", "window", "golden": null | {"requests",
                   "success", "failure", "seconds", "p50Ms", "p95Ms", "p99Ms"}}
    POST   /v1/taps  {"namespace", "function", "revision"?, "method"?, "pathPrefix"?}
           -> 200 {"session": "<id>"}
    GET    /v1/taps/<id>?wait=<seconds, at most 30>
           -> 200 {"events": [...], "dropped": <events lost so far>} (waits for the first)
           -> 404 when the session ended (closed, or not polled for ``idle`` seconds)
    DELETE /v1/taps/<id>  -> 200

Callers must present one of ``readers``' identities (the API, the operator); anything
else is 403. A tap is a long poll rather than a stream: the hub's HTTP layer buffers
whole messages, and a reader that vanishes is noticed when it stops polling, after which
reporters stop sending that session's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from fnmesh.platform.http import Peer, Request, Response
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.tap import TapSession
from fnmesh.platform.telemetry.wire import (
    WireError,
    golden_to_wire,
    parse_window,
    tap_filter_from_wire,
)

log = logging.getLogger("fnmesh.telemetry")
JSON = [(b"content-type", b"application/json")]
GOLDEN, TAPS = b"/v1/golden/", b"/v1/taps"
MAX_WAIT = 30.0
MAX_SESSIONS = 256


def _reply(status: int, body: object) -> Response:
    return Response(status=status, headers=list(JSON), body=json.dumps(body).encode())


@dataclass(slots=True)
class _Lease:
    key: int
    session: TapSession
    polled: float


class ReadHandler:
    def __init__(
        self,
        hub: TelemetryHub,
        readers: frozenset[str],
        *,
        idle: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.readers = readers
        self.idle = idle
        self.clock = clock
        self.leases: dict[str, _Lease] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @staticmethod
    def serves(path: bytes) -> bool:
        return path == TAPS or path.startswith((GOLDEN, TAPS + b"/"))

    async def __call__(self, request: Request, peer: Peer) -> Response:
        if peer.identity not in self.readers:
            who = peer.identity or "a caller without a mesh certificate"
            return _reply(403, {"error": f"{who} may not read telemetry"})
        path, _, raw_query = request.target.partition(b"?")
        query = parse_qs(raw_query.decode("ascii", "replace"))
        try:
            if path.startswith(GOLDEN):
                return self._golden(request, path, query)
            return await self._tap(request, path, query)
        except WireError as error:
            return _reply(400, {"error": str(error)})

    def _golden(self, request: Request, path: bytes, query: dict[str, list[str]]) -> Response:
        if request.method != "GET":
            return _reply(405, {"error": "use GET"})
        parts = unquote(path[len(GOLDEN) :].decode("ascii", "replace")).split("/")
        if len(parts) != 2 or not all(parts):
            raise WireError("ask for /v1/golden/<namespace>/<revision>?window=<seconds>")
        window = parse_window(query.get("window", [None])[0])
        golden = self.hub.golden(parts[0], parts[1], window)
        return _reply(
            200,
            {
                "namespace": parts[0],
                "revision": parts[1],
                "window": window,
                "golden": golden_to_wire(golden),
            },
        )

    async def _tap(self, request: Request, path: bytes, query: dict[str, list[str]]) -> Response:
        self.expire()
        if path == TAPS:
            if request.method != "POST":
                return _reply(405, {"error": "use POST to open a tap session"})
            try:
                body = json.loads(request.body)
            except ValueError as error:
                raise WireError(f"the body is not JSON: {error}") from None
            tap_filter = tap_filter_from_wire(body)
            if len(self.leases) >= MAX_SESSIONS:
                return _reply(503, {"error": f"{MAX_SESSIONS} tap sessions are open, the most"})
            key, session = self.hub.taps.open(tap_filter)
            lease = secrets.token_hex(12)
            self.leases[lease] = _Lease(key, session, self.clock())
            return _reply(200, {"session": lease})
        lease = path[len(TAPS) + 1 :].decode("ascii", "replace")
        held = self.leases.get(lease)
        if held is None:
            return _reply(404, {"error": "no such tap session: it ended"})
        if request.method == "DELETE":
            self._end(lease)
            return _reply(200, {})
        if request.method != "GET":
            return _reply(405, {"error": "use GET to poll, DELETE to end"})
        try:
            wait = min(float(query.get("wait", ["10"])[0]), MAX_WAIT)
        except ValueError:
            raise WireError("wait must be a number of seconds") from None
        held.polled = self.clock()
        events = await held.session.next(max(wait, 0.0))
        held.polled = self.clock()
        return _reply(200, {"events": events, "dropped": held.session.dropped})

    def _end(self, lease: str) -> None:
        held = self.leases.pop(lease, None)
        if held is not None:
            self.hub.taps.close(held.key)

    def expire(self) -> int:
        """End every session nobody polled for ``idle`` seconds; how many ended."""
        now = self.clock()
        ended = [key for key, held in self.leases.items() if now - held.polled > self.idle]
        for key in ended:
            self._end(key)
        return len(ended)

    def start(self, every: float = 5.0) -> None:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(every)
                if self.expire():
                    log.info("tap sessions nobody polled were ended")

        self._sweeper = asyncio.create_task(sweep(), name="tap sessions")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for lease in list(self.leases):
            self._end(lease)
