"""Graceful close: idle connections go at once, in-flight requests finish, stragglers are cut."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from httpkit import RawClient, StartServer, wait_until

from fnmesh.platform.http import Peer, Request, Response

Connect = Callable[[int], Awaitable[RawClient]]


async def test_close_lets_in_flight_requests_finish_and_closes_idle_ones(
    start_server: StartServer, raw_clients: Connect
) -> None:
    release = asyncio.Event()

    async def handler(request: Request, peer: Peer) -> Response:
        if request.target == b"/slow":
            await release.wait()
        return Response(200, [], request.target)

    server = await start_server(handler)
    idle = await raw_clients(server.port)
    await idle.send(b"GET /quick HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await idle.response()).body == b"/quick"
    busy = await raw_clients(server.port)
    await busy.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
    await wait_until("the slow request to be in flight", lambda: server.in_flight == 1)

    closing = asyncio.ensure_future(server.close(drain_timeout=30))
    assert await idle.closed()  # the idle keep-alive connection goes at once
    with pytest.raises(ConnectionRefusedError):
        await RawClient.connect(server.port)  # no longer accepting
    assert not closing.done()

    release.set()
    response = await busy.response()
    assert (response.status, response.body) == (200, b"/slow")
    assert response.header("connection") == "close"
    assert await busy.closed()
    await asyncio.wait_for(closing, 10)
    assert server.connections == 0
    await server.close()  # a second close returns at once


async def test_close_cancels_what_outlives_the_drain_timeout(
    start_server: StartServer, raw_clients: Connect
) -> None:
    cancelled = asyncio.Event()

    async def handler(request: Request, peer: Peer) -> Response:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await wait_until("the request to be in flight", lambda: server.in_flight == 1)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(server.close(drain_timeout=0.2), 10)
    assert asyncio.get_running_loop().time() - started >= 0.2
    assert cancelled.is_set()
    assert await client.closed()
    assert (server.connections, server.in_flight) == (0, 0)
