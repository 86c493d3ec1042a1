"""The server against real sockets: framing, keep-alive, limits, errors, pipelining."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from httpkit import RawClient, StartServer, wait_until

from fnmesh.platform.http import Peer, Request, Response, ServerLimits

Connect = Callable[[int], Awaitable[RawClient]]


async def test_keep_alive_serves_several_requests_on_one_connection(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server()
    client = await raw_clients(server.port)
    for n in range(3):
        await client.send(f"GET /n/{n}?x=1 HTTP/1.1\r\nHost: here\r\n\r\n".encode())
        response = await client.response()
        assert response.status == 200
        assert response.header("x-target") == f"/n/{n}?x=1"
        assert response.header("content-length") == "0"
        assert response.header("date") is not None
        assert response.header("connection") is None
    assert server.connections == 1


async def test_headers_reach_the_handler_lower_cased_in_order_without_hop_by_hop(
    start_server: StartServer, raw_clients: Connect
) -> None:
    seen: list[Request] = []

    async def handler(request: Request, peer: Peer) -> Response:
        seen.append(request)
        return Response(200)

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(
        b"POST /p HTTP/1.1\r\nHost: h\r\nX-One: 1\r\nConnection: keep-alive, X-Private\r\n"
        b"X-Private: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Two: 2\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    assert (await client.response()).status == 200
    request = seen[0]
    assert request.method == "POST"
    assert request.target == b"/p"
    assert request.body == b"abc"
    assert request.headers == [(b"host", b"h"), (b"x-one", b"1"), (b"x-two", b"2")]
    assert request.header(b"x-two") == b"2"
    assert request.header(b"x-private") is None


async def test_the_peer_address_is_the_client_socket(
    start_server: StartServer, raw_clients: Connect
) -> None:
    peers: list[Peer] = []

    async def handler(request: Request, peer: Peer) -> Response:
        peers.append(peer)
        return Response(204)

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    response = await client.response()
    assert response.status == 204
    assert response.header("content-length") is None  # 204 carries no content-length
    local = client.writer.get_extra_info("sockname")
    assert peers == [Peer(("127.0.0.1", local[1]), False, None)]


async def test_response_headers_are_written_with_framing_set_by_the_server(
    start_server: StartServer, raw_clients: Connect
) -> None:
    async def handler(request: Request, peer: Peer) -> Response:
        headers = [(b"x-a", b"1"), (b"content-length", b"999"), (b"connection", b"close")]
        return Response(201, headers, b"hello")

    server = await start_server(handler, server_header=b"fnmesh")
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    response = await client.response()
    assert response.status == 201
    assert response.body == b"hello"
    assert response.header("content-length") == "5"
    assert response.header("connection") is None
    assert response.header("server") == "fnmesh"
    assert response.header("x-a") == "1"
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")  # still open
    assert (await client.response()).status == 201


async def test_head_gets_the_length_but_no_body(
    start_server: StartServer, raw_clients: Connect
) -> None:
    async def handler(request: Request, peer: Peer) -> Response:
        return Response(200, [], b"twelve bytes")

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
    head = await client.response(head=True)
    assert head.header("content-length") == "12"
    get = await client.response()  # the next response follows at once: no body was sent
    assert get.body == b"twelve bytes"


async def test_http10_closes_unless_keep_alive_is_asked(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server()
    client = await raw_clients(server.port)
    await client.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    response = await client.response()
    assert response.header("connection") == "keep-alive"
    await client.send(b"GET /b HTTP/1.0\r\n\r\n")
    response = await client.response()
    assert response.header("x-target") == "/b"
    assert response.header("connection") == "close"
    assert await client.closed()


async def test_connection_close_from_the_client_is_honoured(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server()
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert (await client.response()).header("connection") == "close"
    assert await client.closed()


async def test_a_malformed_request_gets_400_and_the_connection_closes(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server()
    client = await raw_clients(server.port)
    await client.send(b"NOT HTTP AT ALL\r\n\r\n")
    response = await client.response()
    assert response.status == 400
    assert "malformed request" in json.loads(response.body)["error"]
    assert response.header("connection") == "close"
    assert await client.closed()


async def test_pipelined_requests_are_answered_in_order(
    start_server: StartServer, raw_clients: Connect
) -> None:
    async def handler(request: Request, peer: Peer) -> Response:
        await asyncio.sleep(0.05 if request.target == b"/slow" else 0)
        return Response(200, [], request.target)

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(
        b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy"
        b"GET /three HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    bodies = [(await client.response()).body for _ in range(3)]
    assert bodies == [b"/slow", b"/two", b"/three"]


async def test_a_malformed_request_behind_pipelined_ones_is_answered_last(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server()
    client = await raw_clients(server.port)
    await client.send(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\nBROKEN\x00\r\n\r\n")
    first = await client.response()
    assert (first.status, first.header("x-target")) == (200, "/one")
    assert (await client.response()).status == 400
    assert await client.closed()


async def test_expect_100_continue_is_answered_before_the_body_is_sent(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server()
    client = await raw_clients(server.port)
    await client.send(
        b"PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    )
    interim = await client.response()
    assert interim.status == 100
    await client.send(b"12345")
    response = await client.response()
    assert (response.status, response.body) == (200, b"12345")
    assert response.header("x-got-expect") is None


async def test_a_chunked_request_body_is_joined(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server()
    client = await raw_clients(server.port)
    await client.send(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n \r\n"
    )
    await client.send(b"5\r\nworld\r\n0\r\n\r\n")
    response = await client.response()
    assert response.body == b"hello world"
    assert response.header("x-got-transfer-encoding") is None


async def test_a_declared_oversize_body_gets_413_without_being_read(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(max_body_bytes=100))
    client = await raw_clients(server.port)
    await client.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n")
    response = await client.response()  # answered although no body byte was sent
    assert response.status == 413
    assert "100 bytes" in json.loads(response.body)["error"]
    assert await client.closed()


async def test_an_oversize_chunked_body_gets_413(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(max_body_bytes=10))
    client = await raw_clients(server.port)
    await client.send(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    )
    assert (await client.response()).status == 413
    assert await client.closed()


async def test_oversize_headers_get_431(start_server: StartServer, raw_clients: Connect) -> None:
    server = await start_server(limits=ServerLimits(max_header_bytes=1024))
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    assert (await client.response()).status == 431
    assert await client.closed()
    client = await raw_clients(server.port)
    await client.send(b"GET /" + b"a" * 2000 + b" HTTP/1.0\r\n\r\n")
    assert (await client.response()).status == 431


async def test_slow_headers_get_408_and_the_connection_closes(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(header_timeout=0.2))
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n")  # the blank line never comes
    started = asyncio.get_running_loop().time()
    response = await client.response()
    assert response.status == 408
    assert b"request line and headers did not arrive within 0.2 seconds" in response.body
    assert await client.closed()
    assert asyncio.get_running_loop().time() - started < 5.0


async def test_idle_keep_alive_connections_are_closed(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(keep_alive_timeout=0.2))
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await client.response()).status == 200
    assert await client.closed()
    await wait_until("the server to forget the connection", lambda: server.connections == 0)


async def test_a_handler_that_raises_gets_500_and_the_connection_lives_on(
    start_server: StartServer, raw_clients: Connect
) -> None:
    async def handler(request: Request, peer: Peer) -> Response:
        if request.target == b"/boom":
            raise RuntimeError("boom")
        return Response(200, [], b"fine")

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n")
    response = await client.response()
    assert response.status == 500
    assert json.loads(response.body) == {"error": "internal error"}
    assert response.header("content-type") == "application/json"
    await client.send(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await client.response()).body == b"fine"


async def test_a_large_response_arrives_whole(
    start_server: StartServer, raw_clients: Connect
) -> None:
    blob = bytes(range(256)) * 16 * 1024  # 4 MiB: more than the transport buffers at once

    async def handler(request: Request, peer: Peer) -> Response:
        return Response(200, [], blob)

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await client.response()).body == blob


async def test_a_client_half_close_still_gets_its_answer(
    start_server: StartServer, raw_clients: Connect
) -> None:
    release = asyncio.Event()

    async def handler(request: Request, peer: Peer) -> Response:
        await release.wait()
        return Response(200, [], b"late")

    server = await start_server(handler)
    client = await raw_clients(server.port)
    await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await wait_until("the request to be in flight", lambda: server.in_flight == 1)
    client.writer.write_eof()
    release.set()
    response = await client.response()
    assert response.body == b"late"
    assert await client.closed()
