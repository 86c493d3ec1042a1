"""The activator's admission across the network: the gateway asks, the activator holds.

On one machine the gateway calls the activator in process. On a cluster they are two
Deployments, and the activator keeps every revision's capacity slots in one place, so
two gateway replicas never admit twice a revision's capacity. The wire (mTLS; the
gateway presents its component identity, the activator its own)::

    POST /v1/admit    {"namespace", "function", "revision", "concurrency", "timeout"}
        -> 200 {"lease": "<id>"} once a capacity slot is held for the request
        -> 503 / 504 {"reason": ...} when the activator refuses (queue full, deadline)
    POST /v1/release  {"lease": "<id>"}
        -> 200 when the request is done and its slot is free again
    GET  /v1/burst    -> the revisions the activator wants in the path (``burst``)

A lease the gateway never releases (it stopped mid-request) ends by itself ``timeout``
seconds (the function's) plus a grace after it was granted.

``AdmissionHandler`` is the activator's side; ``RemoteAdmission`` is the gateway's
``Admission`` (``fnmesh.platform.admission``): ``through`` makes the activator's
burst-capacity choice from the list it polls (``burst.BurstFeed``), and after a grant it
waits (briefly, ``wait_ready``) until its own route table also sees the revision's ready
replica, since the two follow the cluster independently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from fnmesh.activator import through_activator
from fnmesh.platform.admission import ReadyRoutes, ReadyWaiter, Refused
from fnmesh.platform.cluster.burst import PATH as BURST
from fnmesh.platform.cluster.burst import BurstFeed, Short, render_short
from fnmesh.platform.cluster.settings import host_port
from fnmesh.platform.http import ConnectionPool, Peer, Request, Response, UpstreamError
from fnmesh.platform.model.names import check_name

log = logging.getLogger("fnmesh.cluster.admission")
JSON = [(b"content-type", b"application/json")]
ADMIT, RELEASE = b"/v1/admit", b"/v1/release"
LEASE_GRACE = 10.0
MAX_TIMEOUT = 3600.0


def _reply(status: int, body: object) -> Response:
    return Response(status=status, headers=list(JSON), body=json.dumps(body).encode())


@dataclass(frozen=True, slots=True)
class AdmitRequest:
    namespace: str
    function: str
    revision: str
    concurrency: int
    timeout: float


def parse_admit(body: Any) -> AdmitRequest | str:
    """The admit request in ``body``, or what is wrong with it (pure)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    problems = []
    names = {}
    for field in ("namespace", "function", "revision"):
        why = check_name(body.get(field), what=field, limit=63)
        if why:
            problems.append(why)
        names[field] = str(body.get(field))
    concurrency = body.get("concurrency", 0)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
        problems.append(f"concurrency must be a whole number >= 0, not {concurrency!r}")
    timeout = body.get("timeout", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        timeout = -1
    if not 0 < timeout <= MAX_TIMEOUT:
        problems.append(f"timeout must be seconds above 0, at most {MAX_TIMEOUT:g}")
    if problems:
        return "; ".join(problems)
    return AdmitRequest(**names, concurrency=int(concurrency), timeout=float(timeout))


# -- the activator's side ----------------------------------------------------------------


class Admitter(Protocol):
    """The activator, as the handler uses it."""

    def admit(
        self, namespace: str, function: str, revision: str, concurrency: int
    ) -> AbstractAsyncContextManager[None]: ...


@dataclass(slots=True)
class _Lease:
    slot: AbstractAsyncContextManager[None]
    expires: float


class AdmissionHandler:
    """Serves the wire above for ``callers`` (the gateway's identity) only."""

    def __init__(
        self,
        admitter: Admitter,
        callers: frozenset[str],
        *,
        clock: Callable[[], float] | None = None,
        grace: float = LEASE_GRACE,
        burst: Callable[[], Short] = dict,
    ) -> None:
        self.admitter = admitter
        self.burst = burst
        self.callers = callers
        self.clock = clock
        self.grace = grace
        self.leases: dict[str, _Lease] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return self.clock() if self.clock is not None else asyncio.get_running_loop().time()

    async def __call__(self, request: Request, peer: Peer) -> Response:
        path = request.target.split(b"?", 1)[0]
        if path not in (ADMIT, RELEASE, BURST):
            return _reply(
                404, {"reason": "unknown path: POST /v1/admit or /v1/release, GET /v1/burst"}
            )
        method = "GET" if path == BURST else "POST"
        if request.method != method:
            return _reply(405, {"reason": f"use {method}"})
        if peer.identity not in self.callers:
            return _reply(403, {"reason": f"{peer.identity or 'an anonymous caller'} may not ask"})
        if path == BURST:
            return Response(200, list(JSON), render_short(self.burst()))
        try:
            body = json.loads(request.body)
        except ValueError as error:
            return _reply(400, {"reason": f"the body is not JSON: {error}"})
        if path == RELEASE:
            return await self._release(body)
        parsed = parse_admit(body)
        if isinstance(parsed, str):
            return _reply(400, {"reason": parsed})
        return await self._admit(parsed)

    async def _admit(self, request: AdmitRequest) -> Response:
        slot = self.admitter.admit(
            request.namespace, request.function, request.revision, request.concurrency
        )
        try:
            await slot.__aenter__()
        except Refused as refusal:
            return _reply(refusal.status, {"reason": refusal.reason})
        lease = secrets.token_hex(12)
        self.leases[lease] = _Lease(slot, self._now() + request.timeout + self.grace)
        return _reply(200, {"lease": lease})

    async def _release(self, body: Any) -> Response:
        lease = body.get("lease") if isinstance(body, dict) else None
        held = self.leases.pop(lease, None) if isinstance(lease, str) else None
        if held is None:
            return _reply(404, {"reason": "no such lease: it ended already"})
        await held.slot.__aexit__(None, None, None)
        return _reply(200, {})

    async def expire(self) -> int:
        """End every lease past its time; how many ended."""
        now = self._now()
        ended = [key for key, held in self.leases.items() if held.expires <= now]
        for key in ended:
            held = self.leases.pop(key)
            await held.slot.__aexit__(None, None, None)
        if ended:
            log.warning("%d admissions were never released: their slots are free again", len(ended))
        return len(ended)

    def start(self, every: float = 1.0) -> None:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(every)
                await self.expire()

        self._sweeper = asyncio.create_task(sweep(), name="admission leases")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for held in list(self.leases.values()):
            await held.slot.__aexit__(None, None, None)
        self.leases.clear()


# -- the gateway's side ------------------------------------------------------------------


class RemoteAdmission:
    """The gateway's ``Admission``: asks the activator at ``url`` (see the docstring)."""

    def __init__(
        self,
        url: str,
        *,
        tls: ssl.SSLContext,
        server_identity: str,
        routes: ReadyRoutes,
        timeout_of: Callable[[str, str], float] = lambda namespace, function: 30.0,
        deadline: float = 65.0,
        settle: float = 5.0,
        pool: ConnectionPool | None = None,
        burst: BurstFeed | None = None,
    ) -> None:
        self.host, self.port = host_port(url)
        self.authority = url.split("://", 1)[1].encode()
        self.tls = tls
        self.server_identity = server_identity
        self.timeout_of = timeout_of
        self.deadline = deadline
        self.settle = settle
        self.pool = pool or ConnectionPool(max_idle_per_host=16)
        self.ready = ReadyWaiter(routes)
        self.burst = burst
        self._releases: set[asyncio.Task[None]] = set()

    def through(self, namespace: str, revision: str, ready: int) -> bool:
        """The activator's choice, from the list it serves (a local look-up)."""
        burst = self.burst
        excess = None if burst is None else burst.excess_burst_capacity(namespace, revision)
        return through_activator(ready, excess)

    @contextlib.asynccontextmanager
    async def admit(
        self, namespace: str, function: str, revision: str, concurrency: int
    ) -> AsyncIterator[None]:
        body = {
            "namespace": namespace,
            "function": function,
            "revision": revision,
            "concurrency": concurrency,
            "timeout": min(max(self.timeout_of(namespace, function), 1.0), MAX_TIMEOUT),
        }
        answer = await self._post(ADMIT, body, self.deadline)
        lease = str(answer.get("lease", ""))
        try:
            # at most ``settle`` s; the gateway answers from the routes it has after that
            await self.ready.wait_ready(namespace, function, revision, self.settle)
            yield
        finally:
            task = asyncio.create_task(self._release(lease))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def _post(self, path: bytes, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        request = Request(
            "POST",
            path,
            [(b"host", self.authority), *JSON],
            json.dumps(body, separators=(",", ":")).encode(),
        )
        try:
            response = await self.pool.request(
                self.host,
                self.port,
                request,
                timeout=timeout,
                ssl=self.tls,
                server_hostname=self.server_identity,
            )
            answer = json.loads(response.body) if response.body else {}
        except (UpstreamError, ValueError) as error:
            raise Refused(503, f"the activator cannot be reached: {error}") from None
        if not isinstance(answer, dict):
            answer = {}
        if response.status != 200:
            reason = str(answer.get("reason") or f"the activator answered {response.status}")
            raise Refused(response.status if response.status in (503, 504) else 503, reason)
        return answer

    async def _release(self, lease: str) -> None:
        try:
            await self._post(RELEASE, {"lease": lease}, 5.0)
        except Refused as refusal:  # the lease ends by itself; say so once
            log.warning("releasing an admission failed (it expires by itself): %s", refusal)

    async def close(self) -> None:
        if self._releases:
            await asyncio.wait(set(self._releases), timeout=5.0)
        if self.burst is not None:
            await self.burst.close()
        await self.pool.close()
