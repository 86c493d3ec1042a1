"""Helpers for the HTTP tests: waiting on conditions, an echo handler, a raw byte client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fnmesh.platform.http import HttpServer, Peer, Request, Response

Handler = Callable[[Request, Peer], Awaitable[Response]]
StartServer = Callable[..., Awaitable[HttpServer]]

DEADLINE = 10.0  # seconds any single wait in these tests may take before failing


async def wait_until(what: str, check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll ``check`` on the loop until it is true; fail naming ``what`` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


async def echo(request: Request, peer: Peer) -> Response:
    """Answers with what it got: method, target and body, and the headers as headers."""
    headers = [(b"x-method", request.method.encode()), (b"x-target", request.target)]
    headers += [(b"x-got-" + name, value) for name, value in request.headers]
    return Response(200, headers, request.body)


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RawClient:
    """A TCP connection that writes bytes and reads responses as they arrive."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, head: bool = False) -> RawResponse:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), DEADLINE)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
        response = RawResponse(status, headers, b"")
        length = response.header("content-length")
        if length and not head:
            response.body = await asyncio.wait_for(self.reader.readexactly(int(length)), DEADLINE)
        return response

    async def closed(self) -> bool:
        """True when the server closes the connection (EOF) before the deadline."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), DEADLINE)
        except ConnectionResetError:
            return True
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
