"""Servers on real loopback sockets and raw clients, closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from httpkit import Handler, RawClient, StartServer, echo

from fnmesh.platform.http import HttpServer, ServerLimits, serve


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    servers: list[HttpServer] = []

    async def start(
        handler: Handler = echo, limits: ServerLimits | None = None, **kw: object
    ) -> HttpServer:
        server = await serve(handler, "127.0.0.1", 0, limits=limits or ServerLimits(), **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(drain_timeout=1.0)


@pytest.fixture
async def raw_clients() -> AsyncIterator[Callable[[int], Awaitable[RawClient]]]:
    clients: list[RawClient] = []

    async def connect(port: int) -> RawClient:
        client = await RawClient.connect(port)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()
