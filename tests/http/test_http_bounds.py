"""What one server may take from its clients: connections, time, buffered body bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from httpkit import DEADLINE, RawClient, StartServer, echo, wait_until

from fnmesh.platform.http import Peer, Request, Response, ServerLimits, connection
from fnmesh.platform.http.memory import GIVE_BACK_AFTER, should_give_back

Connect = Callable[[int], Awaitable[RawClient]]


def post(size: int, *, target: bytes = b"/", extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n%s\r\n" % (target, size, extra)


class Gate:
    """A handler that holds every request until opened."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = 0

    async def __call__(self, request: Request, peer: Peer) -> Response:
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        return Response(200, [], b"%d" % len(request.body))


# -- connections ----------------------------------------------------------------------------


async def test_a_connection_over_the_limit_gets_503_and_is_closed(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(max_connections=2))
    served = [await raw_clients(server.port) for _ in range(2)]
    for client in served:
        await client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await client.response()).status == 200
    extra = await raw_clients(server.port)
    await extra.send(post(3) + b"abc")  # a client that sends its request anyway reads the 503
    response = await extra.response()
    assert response.status == 503
    assert response.header("connection") == "close"
    assert response.header("retry-after") == "1"
    assert "Connection limit reached" in json.loads(response.body)["error"]
    assert await extra.closed()
    await extra.close()
    await wait_until("the turned-away connection to be forgotten", lambda: server.connections == 2)
    # A served connection is untouched; when one goes, a new one is served again.
    await served[0].send(b"GET /again HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await served[0].response()).status == 200
    await served[1].close()
    await wait_until("a slot to free", lambda: server.connections == 1)
    again = await raw_clients(server.port)
    await again.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await again.response()).status == 200


# -- time -----------------------------------------------------------------------------------


async def test_a_trickled_body_gets_408_at_the_request_deadline(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(request_timeout=0.5))
    client = await raw_clients(server.port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.send(post(1000))

    async def trickle() -> None:  # a byte every 50 ms: each would once have extended it
        while True:
            await client.send(b"x")
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        response = await client.response()
    finally:
        sender.cancel()
    took = loop.time() - started
    assert response.status == 408
    assert "did not arrive within 0.5 seconds" in json.loads(response.body)["error"]
    assert 0.5 <= took < 2.5, took  # the deadline plus at most the tick's period
    assert await client.closed()
    await client.close()
    await wait_until("the connection to close", lambda: server.connections == 0)
    assert server.buffered == 0


async def test_a_body_that_arrives_in_time_is_served_though_it_came_in_pieces(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(request_timeout=2.0))
    client = await raw_clients(server.port)
    await client.send(post(5))
    for byte in b"hello":
        await client.send(bytes([byte]))
        await asyncio.sleep(0.02)
    response = await client.response()
    assert (response.status, response.body) == (200, b"hello")


# -- buffered body bytes --------------------------------------------------------------------


async def test_requests_over_the_body_budget_get_503_with_retry_after(
    start_server: StartServer, raw_clients: Connect
) -> None:
    gate = Gate()
    server = await start_server(gate, limits=ServerLimits(max_buffered_bytes=1000))
    holders = [await raw_clients(server.port) for _ in range(2)]
    for client in holders:
        await client.send(post(400) + b"x" * 400)
    await wait_until("two requests held", lambda: gate.waiting == 2)
    assert server.buffered == 800

    declared = await raw_clients(server.port)  # refused from its content-length alone
    await declared.send(post(400))
    response = await declared.response()
    assert response.status == 503
    assert response.header("retry-after") == "1"
    assert "1000 bytes of request bodies" in json.loads(response.body)["error"]
    assert await declared.closed()

    chunked = await raw_clients(server.port)  # refused when its bytes go over
    await chunked.send(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"100\r\n" + b"y" * 256 + b"\r\n"
    )
    response = await chunked.response()
    assert response.status == 503
    assert response.header("retry-after") == "1"
    assert await chunked.closed()

    assert server.buffered == 800  # the refused bytes were released
    gate.open.set()
    for client in holders:
        assert (await client.response()).body == b"400"
    assert server.buffered == 0


async def test_over_the_body_budget_100_continue_is_answered_503_instead(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(limits=ServerLimits(max_buffered_bytes=100))
    client = await raw_clients(server.port)
    await client.send(post(101, extra=b"Expect: 100-continue\r\n"))
    assert (await client.response()).status == 503


async def test_many_connections_with_large_bodies_stay_within_the_budget_and_release_it(
    start_server: StartServer,
) -> None:
    budget = 4 * 1024 * 1024
    size = 512 * 1024
    gate = Gate()
    server = await start_server(
        gate, limits=ServerLimits(max_buffered_bytes=budget, max_connections=200)
    )
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, server.buffered)
            await asyncio.sleep(0.001)

    async def upload() -> tuple[int, str | None]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(post(size))
            for _ in range(size // 65536):
                writer.write(b"z" * 65536)
                await writer.drain()
        except ConnectionError:
            pass  # refused mid-body: the answer is still there to read
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        finally:
            writer.close()
        lines = head.decode("latin-1").split("\r\n")
        retry = next((x.split(":")[1].strip() for x in lines if x.startswith("retry-after")), None)
        return int(lines[0].split()[1]), retry

    sampler = asyncio.create_task(sample())
    uploads = [asyncio.create_task(upload()) for _ in range(60)]
    # Everything that fits is held by the handler: the rest must be refused, not buffered.
    await wait_until(
        "every upload held or refused",
        lambda: gate.waiting + sum(1 for u in uploads if u.done()) == len(uploads),
    )
    assert server.buffered <= budget
    gate.open.set()
    results = await asyncio.gather(*uploads)
    sampling = False
    await sampler
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= budget // size // 2
    assert statuses.count(503) >= len(uploads) - budget // size
    assert all(retry == "1" for status, retry in results if status == 503)
    assert 0 < peak <= budget
    await wait_until("the buffered bytes to return to zero", lambda: server.buffered == 0)


async def test_a_keep_alive_connection_keeps_no_body_between_requests(
    start_server: StartServer, raw_clients: Connect
) -> None:
    server = await start_server(echo)
    client = await raw_clients(server.port)
    for _ in range(3):
        await client.send(post(200_000) + b"b" * 200_000)
        response = await client.response()
        assert len(response.body) == 200_000
        assert server.buffered == 0


async def test_a_lingering_close_ends_when_the_client_never_does(
    start_server: StartServer, raw_clients: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "LINGER", 0.2)
    server = await start_server(limits=ServerLimits(max_body_bytes=10))
    client = await raw_clients(server.port)
    await client.send(post(11))  # refused: 413, then the server lingers
    assert (await client.response()).status == 413
    await wait_until("the lingering connection to go", lambda: server.connections == 0)


def test_memory_is_given_back_only_after_a_burst_has_mostly_been_released() -> None:
    mib = 1024 * 1024
    assert should_give_back(0, GIVE_BACK_AFTER)
    assert should_give_back(4 * mib, 64 * mib)
    assert not should_give_back(0, GIVE_BACK_AFTER - 1)  # too small to bother
    assert not should_give_back(32 * mib, 64 * mib)  # still holding half of it
