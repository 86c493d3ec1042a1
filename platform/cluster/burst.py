"""The burst-capacity choice across the network: autoscaler -> activator -> gateway.

On one machine the activator reads the autoscaler's excess burst capacity in process.
On a cluster the autoscaler serves the revisions short of burst capacity, the activator
polls them every second (``BurstFeed``: its ``BurstCapacity``) and serves the same list,
as the revisions it wants in the request path, to the gateway, whose ``RemoteAdmission``
polls it in turn. The wire, on the mTLS control listeners of both::

    GET /v1/burst  -> 200 {"short": [{"namespace", "revision", "excessBurstCapacity"}]}

Each hop answers only its own caller (autoscaler: the activator's identity; activator:
the gateway's). A request asks a local snapshot, never the network. When the source
cannot be reached the last snapshot is kept (the activator stays in the path of what
was short: the safe side) and the outage is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any

from fnmesh.platform.cluster.settings import host_port
from fnmesh.platform.http import ConnectionPool, Peer, Request, Response, UpstreamError
from fnmesh.platform.model.names import check_name

log = logging.getLogger("fnmesh.cluster.burst")
PATH = b"/v1/burst"
JSON = [(b"content-type", b"application/json")]
Short = dict[tuple[str, str], float]


def render_short(short: Short) -> bytes:
    rows = [
        {"namespace": ns, "revision": rev, "excessBurstCapacity": excess}
        for (ns, rev), excess in sorted(short.items())
    ]
    return json.dumps({"short": rows}, separators=(",", ":")).encode()


def parse_short(body: Any) -> Short | str:
    """The revisions short of burst capacity in ``body``, or what is wrong with it (pure)."""
    rows = body.get("short") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        return "the body must be an object with a list 'short'"
    found: Short = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"short[{i}] must be an object"
        for field in ("namespace", "revision"):
            why = check_name(row.get(field), what=f"short[{i}].{field}", limit=63)
            if why:
                return why
        excess = row.get("excessBurstCapacity")
        if isinstance(excess, bool) or not isinstance(excess, int | float):
            return f"short[{i}].excessBurstCapacity must be a number, not {excess!r}"
        found[(str(row["namespace"]), str(row["revision"]))] = float(excess)
    return found


class BurstHandler:
    """Serves ``GET /v1/burst`` from ``short()`` to ``callers`` only."""

    def __init__(self, short: Callable[[], Short], callers: frozenset[str]) -> None:
        self.short = short
        self.callers = callers

    async def __call__(self, request: Request, peer: Peer) -> Response:
        if request.method != "GET":
            return Response(405, list(JSON), b'{"error":"use GET"}')
        if peer.identity not in self.callers:
            body = json.dumps({"error": f"{peer.identity or 'an anonymous caller'} may not ask"})
            return Response(403, list(JSON), body.encode())
        return Response(200, list(JSON), render_short(self.short()))


class BurstFeed:
    """A snapshot of another component's ``GET /v1/burst``, polled every ``every`` s."""

    def __init__(
        self,
        url: str,
        *,
        tls: ssl.SSLContext,
        server_identity: str,
        every: float = 1.0,
        timeout: float = 2.0,
        pool: ConnectionPool | None = None,
    ) -> None:
        self.host, self.port = host_port(url)
        self.authority = url.split("://", 1)[1].encode()
        self.tls = tls
        self.server_identity = server_identity
        self.every = every
        self.timeout = timeout
        self.pool = pool or ConnectionPool(max_idle_per_host=2)
        self.snapshot: Short = {}
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    def excess_burst_capacity(self, namespace: str, revision: str) -> float | None:
        """The activator's ``BurstCapacity``: negative for a revision short of capacity,
        None for every other (the autoscaler lists only those short)."""
        return self.snapshot.get((namespace, revision))

    def short(self) -> Short:
        return self.snapshot

    async def refresh(self) -> bool:
        """Read the list once; True when it was read."""
        request = Request("GET", PATH, [(b"host", self.authority)], b"")
        try:
            response = await self.pool.request(
                self.host,
                self.port,
                request,
                timeout=self.timeout,
                ssl=self.tls,
                server_hostname=self.server_identity,
            )
            if response.status != 200:
                raise UpstreamError(f"answered {response.status}: {response.body[:200]!r}")
            parsed = parse_short(json.loads(response.body))
            if isinstance(parsed, str):
                raise UpstreamError(f"sent a bad list: {parsed}")
        except (UpstreamError, ValueError) as error:
            if not self._failing:
                self._failing = True
                log.warning("burst capacity unknown until %s answers: %s", self.authority, error)
            return False
        if self._failing:
            self._failing = False
            log.info("burst capacity from %s again", self.authority.decode())
        self.snapshot = parsed
        return True

    def start(self) -> None:
        async def poll() -> None:
            while True:
                await self.refresh()
                await asyncio.sleep(self.every)

        self._task = asyncio.create_task(poll(), name="burst capacity")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pool.close()
