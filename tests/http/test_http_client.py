"""The connection pool against real servers: reuse, retries, errors, framing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from httpkit import StartServer, wait_until

from fnmesh.platform.http import (
    ConnectError,
    ConnectionPool,
    Peer,
    ProtocolError,
    Request,
    ResetError,
    Response,
    ServerLimits,
    UpstreamTimeout,
)

# A scripted upstream: called with the connection number (0, 1, ...) and the request
# number on that connection, it returns the bytes to answer with and whether to close.
Script = Callable[[int, int, bytes], tuple[bytes, bool]]


class ScriptedUpstream:
    """A raw TCP server that answers each request head with bytes from a script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            for count in range(100):
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                answer, close = self.script(number, count, head)
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool()
    yield pool
    await pool.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Callable[[Script], Awaitable[int]]]:
    started: list[ScriptedUpstream] = []

    async def start(script: Script) -> int:
        server = ScriptedUpstream(script)
        started.append(server)
        return await server.start()

    yield start
    for server in started:
        await server.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def get(target: bytes = b"/") -> Request:
    return Request("GET", target, [])


async def test_sequential_requests_reuse_one_connection(
    start_server: StartServer, pool: ConnectionPool
) -> None:
    server = await start_server()
    for n in range(10):
        body = f"n={n}".encode()
        response = await pool.request(
            "127.0.0.1", server.port, Request("POST", b"/x", [], body), timeout=5
        )
        assert (response.status, response.body) == (200, body)
    assert pool.opened == 1
    assert server.connections == 1


async def test_the_request_is_written_with_host_and_content_length_only(
    start_server: StartServer, pool: ConnectionPool
) -> None:
    server = await start_server()
    response = await pool.request(
        "127.0.0.1", server.port, Request("PUT", b"/a", [(b"x-a", b"1")], b"abc"), timeout=5
    )
    got = [(k, v) for k, v in response.headers if k.startswith(b"x-got-")]
    assert got == [(b"x-got-x-a", b"1"), (b"x-got-host", f"127.0.0.1:{server.port}".encode())]
    response = await pool.request(
        "127.0.0.1", server.port, Request("GET", b"/", [(b"host", b"mine")]), timeout=5
    )
    assert response.header(b"x-got-host") == b"mine"
    assert [k for k, _ in response.headers].count(b"x-got-host") == 1


async def test_concurrent_requests_open_connections_and_keep_only_max_idle(
    start_server: StartServer,
) -> None:
    release = asyncio.Event()

    async def handler(request: Request, peer: Peer) -> Response:
        await release.wait()
        return Response(200)

    server = await start_server(handler)
    pool = ConnectionPool(max_idle_per_host=2)
    try:
        calls = [
            asyncio.ensure_future(pool.request("127.0.0.1", server.port, get(), timeout=5))
            for _ in range(5)
        ]
        await wait_until("five requests in flight", lambda: server.in_flight == 5)
        release.set()
        assert [r.status for r in await asyncio.gather(*calls)] == [200] * 5
        assert pool.opened == 5
        assert pool.idle_count("127.0.0.1", server.port) == 2
        await wait_until("three connections closed", lambda: server.connections == 2)
    finally:
        await pool.close()
    await wait_until("all connections closed", lambda: server.connections == 0)


async def test_connection_close_from_the_upstream_is_honoured(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    close = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
    port = await upstream(lambda conn, count, head: (close, True))
    for _ in range(3):
        assert (await pool.request("127.0.0.1", port, get(), timeout=5)).body == b"ok"
    assert pool.opened == 3


async def test_a_stale_reused_connection_is_retried_once_on_a_fresh_one(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    # Every connection answers its first request, then closes on the second unanswered.
    port = await upstream(lambda conn, count, head: (OK, False) if count == 0 else (b"", True))
    assert (await pool.request("127.0.0.1", port, get(b"/1"), timeout=5)).body == b"ok"
    assert (await pool.request("127.0.0.1", port, get(b"/2"), timeout=5)).body == b"ok"
    assert pool.opened == 2


async def test_nothing_is_retried_once_a_response_byte_arrived(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    partial = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
    sent: list[bytes] = []

    def script(conn: int, count: int, head: bytes) -> tuple[bytes, bool]:
        sent.append(head)
        return (OK, False) if count == 0 else (partial, True)

    port = await upstream(script)
    await pool.request("127.0.0.1", port, get(b"/1"), timeout=5)
    with pytest.raises(ResetError, match="mid-response"):
        await pool.request("127.0.0.1", port, get(b"/2"), timeout=5)
    assert len(sent) == 2
    assert pool.opened == 1


async def test_a_fresh_connection_reset_before_answering_is_not_retried(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    port = await upstream(lambda conn, count, head: (b"", True))
    with pytest.raises(ResetError, match="before answering"):
        await pool.request("127.0.0.1", port, get(), timeout=5)
    assert pool.opened == 1


async def test_a_closed_port_is_a_connect_error(pool: ConnectionPool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
        await pool.request("127.0.0.1", port, get(), timeout=5)


async def test_no_response_within_the_timeout_is_upstream_timeout(
    start_server: StartServer, pool: ConnectionPool
) -> None:
    never = asyncio.Event()

    async def handler(request: Request, peer: Peer) -> Response:
        await never.wait()
        return Response(200)

    server = await start_server(handler)
    started = asyncio.get_running_loop().time()
    with pytest.raises(UpstreamTimeout, match=r"0\.2s"):
        await pool.request("127.0.0.1", server.port, get(), timeout=0.2)
    assert asyncio.get_running_loop().time() - started < 5.0
    never.set()  # the answer finds the connection gone; the server forgets it
    await wait_until("the timed-out connection to be dropped", lambda: server.connections == 0)
    assert pool.idle_count("127.0.0.1", server.port) == 0


async def test_a_body_delimited_by_eof_is_read_to_the_end(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    port = await upstream(lambda c, n, h: (b"HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\nuntil the end", True))
    response = await pool.request("127.0.0.1", port, get(), timeout=5)
    assert (response.body, response.headers) == (b"until the end", [(b"x-a", b"1")])


async def test_a_chunked_response_is_joined_and_the_connection_reused(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: keep-alive, x-hop\r\n"
        b"x-hop: 1\r\nx-end: 2\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    port = await upstream(lambda c, n, h: (chunked, False))
    for _ in range(2):
        response = await pool.request("127.0.0.1", port, get(), timeout=5)
        assert (response.body, response.headers) == (b"abcde", [(b"x-end", b"2")])
    assert pool.opened == 1


async def test_interim_responses_are_skipped(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    port = await upstream(lambda c, n, h: (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, False))
    assert (await pool.request("127.0.0.1", port, get(), timeout=5)).body == b"ok"


async def test_head_responses_end_after_the_headers_and_the_connection_is_reused(
    start_server: StartServer, pool: ConnectionPool
) -> None:
    async def handler(request: Request, peer: Peer) -> Response:
        return Response(200, [], b"a body of some length")

    server = await start_server(handler)
    head = await pool.request("127.0.0.1", server.port, Request("HEAD", b"/", []), timeout=5)
    assert (head.status, head.body) == (200, b"")
    got = await pool.request("127.0.0.1", server.port, get(), timeout=5)
    assert got.body == b"a body of some length"
    assert pool.opened == 1


async def test_garbage_is_a_protocol_error(
    upstream: Callable[[Script], Awaitable[int]], pool: ConnectionPool
) -> None:
    port = await upstream(lambda c, n, h: (b"SMTP ready\r\n\r\n", False))
    with pytest.raises(ProtocolError, match="malformed"):
        await pool.request("127.0.0.1", port, get(), timeout=5)


async def test_a_response_body_over_the_limit_is_a_protocol_error(
    start_server: StartServer, pool: ConnectionPool
) -> None:
    async def handler(request: Request, peer: Peer) -> Response:
        return Response(200, [], b"x" * 1000)

    server = await start_server(handler)
    with pytest.raises(ProtocolError, match="100 bytes"):
        await pool.request("127.0.0.1", server.port, get(), timeout=5, max_body_bytes=100)


async def test_idle_connections_past_the_idle_timeout_are_not_reused(
    start_server: StartServer,
) -> None:
    server = await start_server(limits=ServerLimits(keep_alive_timeout=60))
    pool = ConnectionPool(idle_timeout=0.1)
    try:
        await pool.request("127.0.0.1", server.port, get(), timeout=5)
        await wait_until("the pool to close its idle connection", lambda: server.connections == 0)
        await pool.request("127.0.0.1", server.port, get(), timeout=5)
        assert pool.opened == 2
    finally:
        await pool.close()


async def test_a_closed_pool_refuses_requests(start_server: StartServer) -> None:
    server = await start_server()
    pool = ConnectionPool()
    await pool.request("127.0.0.1", server.port, get(), timeout=5)
    await pool.close()
    await wait_until("the idle connection to close", lambda: server.connections == 0)
    with pytest.raises(ConnectError, match="closed"):
        await pool.request("127.0.0.1", server.port, get(), timeout=5)
