"""The gateway's hot path: resolve, choose, forward over a pooled connection.

Errors the gateway makes itself are JSON: ``{"error": ..., "function": ...}`` with
404 (no such function), 503 (no ready replica) or 502/504 (the replica failed or
timed out). A connection that could not be opened sent nothing, so it is retried on
another ready replica.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
from collections.abc import Callable

from fnmesh.platform.gateway.choice import pick_weighted
from fnmesh.platform.gateway.routing import Route, resolve
from fnmesh.platform.gateway.table import Endpoint, Routes, RouteTable
from fnmesh.platform.http import (
    ConnectError,
    ConnectionPool,
    HttpServer,
    Peer,
    Request,
    Response,
    ServerLimits,
    UpstreamError,
    UpstreamTimeout,
    serve,
)

JSON = [(b"content-type", b"application/json")]


def error(status: int, message: str, **extra: str) -> Response:
    body = json.dumps({"error": message, **extra}).encode() + b"\n"
    return Response(status=status, headers=list(JSON), body=body)


class Gateway:
    def __init__(
        self,
        table: RouteTable,
        *,
        domain: str,
        max_body_bytes: int,
        upstream_timeout: float,
        roll: Callable[[], float] = random.random,
    ) -> None:
        self.table = table
        self.domain = domain.encode()
        self.limits = ServerLimits(max_body_bytes=max_body_bytes)
        self.upstream_timeout = upstream_timeout
        self.pool = ConnectionPool()
        self.roll = roll
        self.server: HttpServer | None = None
        self._turn = 0

    async def start(self, host: str, port: int, sock: socket.socket | None = None) -> HttpServer:
        self.server = await serve(self.handle, host, port, limits=self.limits, sock=sock)
        return self.server

    async def close(self, drain_timeout: float = 10.0) -> None:
        if self.server is not None:
            await self.server.close(drain_timeout)
        await self.pool.close()

    async def handle(self, request: Request, peer: Peer) -> Response:
        route = resolve(request.header(b"host"), request.target, self.domain)
        if route is None:
            return error(
                404,
                "no function here: call /fn/<name>/ or <name>.<namespace>." + self.domain.decode(),
            )
        routes = self.table.get(route.namespace, route.function)
        if routes is None or routes.visibility != "public":
            return error(
                404,
                f"function {route.namespace}/{route.function} not found",
                function=route.function,
            )
        revision = pick_weighted(routes.backends, self.roll())
        if revision is None:
            return error(
                503,
                f"function {route.namespace}/{route.function} has no ready revision"
                " yet: deploy it with 'fn deploy'",
                function=route.function,
            )
        return await self._forward(request, peer, route, routes, revision)

    async def _forward(
        self, request: Request, peer: Peer, route: Route, routes: Routes, revision: str
    ) -> Response:
        candidates = list(routes.endpoints.get(revision, ()))
        if not candidates:
            return error(503, f"revision {revision} has no ready replica", function=route.function)
        upstream = Request(
            method=request.method,
            target=route.target,
            headers=self._headers(request, peer, route),
            body=request.body,
        )
        timeout = min(self.upstream_timeout, routes.timeout + 1.0)
        for attempt in range(len(candidates)):
            endpoint = self._next(candidates, attempt)
            try:
                response = await self.pool.request(
                    endpoint.host, endpoint.port, upstream, timeout=timeout
                )
            except ConnectError:
                continue  # nothing was sent: another replica may take it
            except UpstreamTimeout:
                return error(
                    504,
                    f"revision {revision} did not answer within {timeout:g}s",
                    function=route.function,
                )
            except UpstreamError as failure:
                return error(
                    502, f"replica {endpoint.name} failed: {failure}", function=route.function
                )
            return response
        return error(
            502, f"no replica of revision {revision} accepted a connection", function=route.function
        )

    def _next(self, candidates: list[Endpoint], attempt: int) -> Endpoint:
        self._turn += 1
        return candidates[(self._turn + attempt) % len(candidates)]

    @staticmethod
    def _headers(request: Request, peer: Peer, route: Route) -> list[tuple[bytes, bytes]]:
        headers = [h for h in request.headers if h[0] != b"x-forwarded-for"]
        if request.header(b"x-request-id") is None:
            headers.append((b"x-request-id", secrets.token_hex(8).encode()))
        if peer.address is not None:
            forwarded = request.header(b"x-forwarded-for")
            client = peer.address[0].encode()
            headers.append(
                (b"x-forwarded-for", forwarded + b", " + client if forwarded else client)
            )
        headers.append((b"x-forwarded-proto", b"https" if peer.tls else b"http"))
        if route.prefix:
            headers.append((b"x-forwarded-prefix", route.prefix))
        return headers
