"""The gateway's hot path: resolve, choose a revision, send through the outbound stack.

A revision with no ready replica -- scaled to zero -- or, by its burst capacity, too
little spare capacity goes through ``admission`` first (the activator, behind the
``fnmesh.platform.admission`` contract, which makes that choice): the request waits there
until capacity exists, then continues here with the current replicas; a refusal is
answered with its own status (503/504) and reason.

A private function is served only to a caller whose bearer token may invoke it
(``private``: 401/403 otherwise); without ``private`` it is not served at all (404).

A traffic tag (``/fn/<name>@<tag>/`` or host ``<tag>-<name>.<ns>.<domain>``) picks its
revision directly, whatever the weights say.

Errors the gateway makes itself are JSON: ``{"error": ..., "function": ...}`` with 404
(no such function or tag) or 503 (no revision to send to). Past the choice of revision the
request belongs to ``fnmesh.platform.mesh.outbound``: it picks the replica (P2C over
peak-EWMA latency, skipping ejected ones), sends it over mTLS to the replica's proxy,
retries what is safe within a budget, and answers 502/503/504 with a reason itself.
"""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import ssl
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from fnmesh.platform.admission import Admission, Refused
from fnmesh.platform.gateway.choice import pick_weighted
from fnmesh.platform.gateway.private import AUTHORIZATION, PrivateAccess
from fnmesh.platform.gateway.routing import Route, resolve, tag_splits
from fnmesh.platform.gateway.table import Routes, RouteTable
from fnmesh.platform.http import HttpServer, Peer, Request, Response, ServerLimits, serve
from fnmesh.platform.mesh.outbound import Outbound, Settings, Target

JSON = [(b"content-type", b"application/json")]
# Request ids only need to be unique, not secret: a seeded generator costs no system call.
_request_ids = random.Random()
TIMEOUT_GRACE = 1.0  # seconds the gateway waits beyond the function's own timeout


def error(status: int, message: str, **extra: str) -> Response:
    body = json.dumps({"error": message, **extra}).encode() + b"\n"
    return Response(status=status, headers=list(JSON), body=body)


class Gateway:
    """The ingress. ``tls`` is the client context replicas are reached with (mTLS, each
    replica checked against its revision's identity); None sends plaintext."""

    def __init__(
        self,
        table: RouteTable,
        *,
        domain: str,
        max_body_bytes: int,
        upstream_timeout: float,
        tls: ssl.SSLContext | None = None,
        registry: CollectorRegistry | None = None,
        roll: Callable[[], float] = random.random,
        admission: Admission | None = None,
        private: PrivateAccess | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self.table = table
        self.domain = domain.encode()
        self.limits = dataclasses.replace(limits or ServerLimits(), max_body_bytes=max_body_bytes)
        self.upstream_timeout = upstream_timeout
        self.registry = registry if registry is not None else CollectorRegistry()
        self.outbound = Outbound(tls=tls, registry=self.registry)
        self.roll = roll
        self.admission = admission  # None: every request goes straight to replicas
        self.private = private  # None: private functions are not served at all (404)
        self.server: HttpServer | None = None
        self._targets: dict[tuple[str, str], tuple[Routes, Target]] = {}
        self._settings: dict[float, Settings] = {}

    async def start(self, host: str, port: int, sock: socket.socket | None = None) -> HttpServer:
        self.server = await serve(self.handle, host, port, limits=self.limits, sock=sock)
        return self.server

    async def close(self, drain_timeout: float = 10.0) -> None:
        if self.server is not None:
            await self.server.close(drain_timeout)
        await self.outbound.close()

    async def handle(self, request: Request, peer: Peer) -> Response:
        route = resolve(request.header(b"host"), request.target, self.domain)
        if route is None:
            return error(
                404,
                "no function here: call /fn/<name>/ or <name>.<namespace>." + self.domain.decode(),
            )
        routes = self.table.get(route.namespace, route.function)
        if routes is None and not route.prefix:
            route, routes = self._by_host_tag(route)
        private = routes is not None and routes.visibility != "public"
        if routes is None or (private and self.private is None):
            return error(
                404,
                f"function {route.namespace}/{route.function} not found",
                function=route.function,
            )
        if private:
            assert self.private is not None
            refused = self.private.check(
                route.namespace, route.function, request.header(AUTHORIZATION)
            )
            if refused is not None:
                reply = error(refused[0], refused[1], function=route.function)
                if refused[0] == 401:
                    reply.headers.append((b"www-authenticate", b'Bearer realm="fnmesh"'))
                return reply
        if route.tag is not None:
            revision = routes.tags.get(route.tag)
            if revision is None:
                return error(
                    404,
                    f"function {route.namespace}/{route.function} has no tag {route.tag!r}:"
                    f" `fn traffic {route.function}` lists its tags",
                    function=route.function,
                )
        else:
            revision = pick_weighted(routes.backends, self.roll())
        if revision is None:
            return error(
                503,
                f"function {route.namespace}/{route.function} has no ready revision"
                " yet: deploy it with 'fn deploy'",
                function=route.function,
            )
        upstream = Request(
            method=request.method,
            target=route.target,
            headers=self._headers(request, peer, route, private),
            body=request.body,
        )
        admission = self.admission
        if admission is not None and admission.through(
            route.namespace, revision, len(routes.endpoints.get(revision, ()))
        ):
            return await self._activate(admission, route, routes, revision, upstream)
        return await self.outbound.request(self._target(routes, revision), upstream)

    def _by_host_tag(self, route: Route) -> tuple[Route, Routes | None]:
        """``<tag>-<name>`` in the host: a tag of function ``name`` (no function has the
        whole name, or this would not be asked)."""
        for tag, name in tag_splits(route.function):
            routes = self.table.get(route.namespace, name)
            if routes is not None and tag in routes.tags:
                return Route(route.namespace, name, route.target, route.prefix, tag), routes
        return route, None

    async def _activate(
        self, admission: Admission, route: Route, routes: Routes, revision: str, upstream: Request
    ) -> Response:
        concurrency = routes.concurrency.get(revision, 0)
        try:
            async with admission.admit(route.namespace, route.function, revision, concurrency):
                current = self.table.get(route.namespace, route.function)
                if current is None or revision not in current.endpoints:
                    # the revision left the split while the request waited: its replicas
                    # serve it during their grace
                    return await self.outbound.request(self._left(routes, revision), upstream)
                return await self.outbound.request(self._target(current, revision), upstream)
        except Refused as refusal:
            return error(refusal.status, refusal.reason, function=route.function)

    def _target(self, routes: Routes, revision: str) -> Target:
        """The outbound destination of ``revision``, made again only when its routes change."""
        key = (routes.namespace, revision)
        cached = self._targets.get(key)
        if cached is not None and cached[0] is routes:
            return cached[1]
        target = Target(
            name=f"{routes.namespace}/{revision}",
            namespace=routes.namespace,
            function=routes.function,
            revision=revision,
            endpoints=routes.endpoints.get(revision, ()),
            settings=self._settings_for(routes.timeout),
        )
        self._targets[key] = (routes, target)
        return target

    def _left(self, routes: Routes, revision: str) -> Target:
        """The destination of a revision no longer in its function's split (not cached)."""
        return Target(
            name=f"{routes.namespace}/{revision}",
            namespace=routes.namespace,
            function=routes.function,
            revision=revision,
            endpoints=self.table.endpoints_of(routes.namespace, revision),
            settings=self._settings_for(routes.timeout),
        )

    def _settings_for(self, function_timeout: float) -> Settings:
        settings = self._settings.get(function_timeout)
        if settings is None:
            timeout = min(self.upstream_timeout, function_timeout + TIMEOUT_GRACE)
            settings = self._settings[function_timeout] = Settings(timeout=timeout)
        return settings

    @staticmethod
    def _headers(
        request: Request, peer: Peer, route: Route, private: bool = False
    ) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        forwarded: bytes | None = None
        request_id: bytes | None = None
        for header in request.headers:  # one pass: this runs for every request
            name = header[0]
            if name == b"x-forwarded-for":
                forwarded = forwarded or header[1]
                continue
            if private and name == AUTHORIZATION:
                continue  # the platform's token: never handed to function code
            if name == b"x-request-id":
                request_id = header[1]
            headers.append(header)
        if request_id is None:
            headers.append((b"x-request-id", b"%016x" % _request_ids.getrandbits(64)))
        if peer.address is not None:
            client = peer.address[0].encode()
            headers.append(
                (b"x-forwarded-for", forwarded + b", " + client if forwarded else client)
            )
        headers.append((b"x-forwarded-proto", b"https" if peer.tls else b"http"))
        if route.prefix:
            headers.append((b"x-forwarded-prefix", route.prefix))
        return headers
