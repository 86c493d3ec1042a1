"""The server protocol fed bytes through a fake transport: flow control, seen from inside."""

from __future__ import annotations

import asyncio
from typing import Any

from httpkit import wait_until

from fnmesh.platform.http import Peer, Request, Response, ServerLimits
from fnmesh.platform.http.connection import HttpConnection, ServerState


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.reading = True
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default


async def answer(request: Request, peer: Peer) -> Response:
    return Response(200, [], request.target)


def connect(handler: Any = answer) -> tuple[HttpConnection, FakeTransport]:
    state = ServerState(handler, ServerLimits(), None)
    connection = HttpConnection(state)
    transport = FakeTransport()
    connection.connection_made(transport)
    return connection, transport


async def test_a_paused_transport_holds_the_next_response_back() -> None:
    connection, transport = connect()
    connection.pause_writing()  # the peer reads slowly: the transport's buffer is full
    connection.data_received(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    assert not transport.reading  # a second request waits: reading pauses
    await wait_until("the first response", lambda: b"/1" in transport.written)
    for _ in range(10):
        await asyncio.sleep(0)
    assert b"/2" not in transport.written
    connection.resume_writing()
    await wait_until("the second response", lambda: b"/2" in transport.written)
    await wait_until("reading to resume", lambda: transport.reading)
    assert transport.written.count(b"HTTP/1.1 200 OK") == 2


async def test_a_lost_connection_releases_a_response_waiting_to_write() -> None:
    connection, transport = connect()
    connection.pause_writing()
    connection.data_received(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
    await wait_until("the response", lambda: b"/1" in transport.written)
    connection.connection_lost(ConnectionResetError())
    state = connection._state
    await wait_until("the handler task to end", lambda: not state.tasks)


async def test_head_responses_give_the_length_only_when_it_is_known() -> None:
    async def proxied(request: Request, peer: Peer) -> Response:
        return Response(200, [], b"" if request.target == b"/proxied" else b"known")

    connection, transport = connect(proxied)
    connection.data_received(b"HEAD /proxied HTTP/1.1\r\nHost: h\r\n\r\n")
    await wait_until("the response", lambda: transport.written.endswith(b"\r\n\r\n"))
    assert b"content-length" not in bytes(transport.written)  # unknown: left out, not 0
    transport.written.clear()
    connection.data_received(b"HEAD /direct HTTP/1.1\r\nHost: h\r\n\r\n")
    await wait_until("the response", lambda: transport.written.endswith(b"\r\n\r\n"))
    assert b"content-length: 5\r\n" in bytes(transport.written)
    assert not transport.written.endswith(b"known")
