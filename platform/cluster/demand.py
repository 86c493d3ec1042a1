"""Load and demand, carried to the autoscaler across the network.

On one machine the activator and the telemetry hub call the autoscaler in process
(``record`` every second per reporter, ``poke`` when a request arrives at zero). On a
cluster ``RemoteDemand`` sends the same calls to the autoscaler's control listener
(mTLS), and ``DemandHandler`` makes them there::

    POST /v1/demand  {"namespace", "revision", "source", "concurrency", "rps"}
    POST /v1/demand  {"namespace", "revision", "poke": true}
    POST /v1/demand  {"calls": [<either of the above>, ...]}   (at most 1000)

Calls are sent in order by one task; those that queued while one was on the wire go
together in one ``calls`` batch (the hub relays a report per replica per second). When
the autoscaler cannot be reached they are dropped (the next second brings fresh ones),
and said once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from typing import Any, Protocol

from fnmesh.platform.cluster.settings import host_port
from fnmesh.platform.http import ConnectionPool, Peer, Request, Response, UpstreamError
from fnmesh.platform.model.names import check_name

log = logging.getLogger("fnmesh.cluster.demand")
JSON = [(b"content-type", b"application/json")]
PATH = b"/v1/demand"
MAX_BATCH = 1000


class Sink(Protocol):
    """The autoscaler, as the activator sees it."""

    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None: ...

    def poke(self, namespace: str, revision: str) -> None: ...


class RemoteDemand:
    """``Demand`` for the activator: each call becomes a POST to the autoscaler."""

    def __init__(
        self,
        url: str,
        *,
        tls: ssl.SSLContext,
        server_identity: str,
        pool: ConnectionPool | None = None,
        timeout: float = 5.0,
        max_pending: int = 1000,
    ) -> None:
        self.host, self.port = host_port(url)
        self.authority = url.split("://", 1)[1].encode()
        self.tls = tls
        self.server_identity = server_identity
        self.pool = pool or ConnectionPool(max_idle_per_host=2)
        self.timeout = timeout
        self.pending: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_pending)
        self.sent = 0
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None:
        call = {"namespace": namespace, "revision": revision, "source": source}
        self._put({**call, "concurrency": concurrency, "rps": rps})

    def poke(self, namespace: str, revision: str) -> None:
        self._put({"namespace": namespace, "revision": revision, "poke": True})

    def _put(self, call: dict[str, Any]) -> None:
        if self.pending.full():
            self.pending.get_nowait()  # the oldest goes: newer demand says more
        self.pending.put_nowait(call)

    def start(self) -> None:
        self._task = asyncio.create_task(self._send_all(), name="demand to the autoscaler")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pool.close()

    async def _send_all(self) -> None:
        while True:
            calls = [await self.pending.get()]
            while not self.pending.empty() and len(calls) < MAX_BATCH:
                calls.append(self.pending.get_nowait())
            await self.send(calls[0] if len(calls) == 1 else {"calls": calls})

    async def send(self, call: dict[str, Any]) -> bool:
        """Send one call now; True when the autoscaler took it."""
        request = Request(
            "POST", PATH, [(b"host", self.authority), *JSON], json.dumps(call).encode()
        )
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
        except UpstreamError as error:
            if not self._failing:
                self._failing = True
                log.warning("demand for the autoscaler is dropped until it answers: %s", error)
            return False
        if self._failing:
            self._failing = False
            log.info("the autoscaler takes demand again")
        self.sent += 1
        return True


def _reply(status: int, body: object) -> Response:
    return Response(status=status, headers=list(JSON), body=json.dumps(body).encode())


def parse_call(body: Any) -> tuple[str, str, dict[str, Any]] | str:
    """(namespace, revision, the rest) of a demand call, or what is wrong with it (pure)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for field in ("namespace", "revision"):
        why = check_name(body.get(field), what=field, limit=63)
        if why:
            return why
    if body.get("poke") is True:
        return str(body["namespace"]), str(body["revision"]), {"poke": True}
    numbers = {}
    for field in ("concurrency", "rps"):
        value = body.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return f"{field} must be a number >= 0, not {value!r}"
        numbers[field] = float(value)
    source = body.get("source")
    if not isinstance(source, str) or not source:
        return "source must name who measured the demand, e.g. 'activator'"
    return str(body["namespace"]), str(body["revision"]), {"source": source, **numbers}


class DemandHandler:
    """The autoscaler's side: takes calls from ``callers`` (the activator's identity)."""

    def __init__(self, sink: Sink, callers: frozenset[str]) -> None:
        self.sink = sink
        self.callers = callers

    async def __call__(self, request: Request, peer: Peer) -> Response:
        if request.method != "POST":
            return _reply(405, {"error": "use POST"})
        if peer.identity not in self.callers:
            return _reply(403, {"error": f"{peer.identity or 'an anonymous caller'} may not"})
        try:
            body = json.loads(request.body)
        except ValueError as error:
            return _reply(400, {"error": f"the body is not JSON: {error}"})
        batched = isinstance(body, dict) and "calls" in body
        batch = body["calls"] if batched else [body]
        if not isinstance(batch, list) or len(batch) > MAX_BATCH:
            return _reply(400, {"error": f"calls must be a list of at most {MAX_BATCH} calls"})
        parsed = [parse_call(call) for call in batch]
        for i, found in enumerate(parsed):
            if isinstance(found, str):
                where = f"calls[{i}]: " if batched else ""
                return _reply(400, {"error": where + found})
        for namespace, revision, rest in (p for p in parsed if not isinstance(p, str)):
            if rest.get("poke"):
                self.sink.poke(namespace, revision)
            else:
                self.sink.record(
                    namespace, revision, rest["source"], rest["concurrency"], rest["rps"]
                )
        return _reply(200, {})
