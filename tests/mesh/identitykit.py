"""Shared pieces for the identity tests: fake time, a CA, TLS echo servers."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    TlsCredentials,
    check_csr,
    identity_name,
    make_csr,
    peer_identity,
)

HELLO = identity_name("hello", "default")
GATEWAY = identity_name("gateway", "fnmesh-system")


def real_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class FakeTime:
    """A wall clock that moves only when told to, and a sleep that waits for it."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []
        self.requested: list[float] = []

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.requested.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.current + timedelta(seconds=seconds), future)
        self._sleepers.append(entry)
        try:
            if seconds <= 0:
                future.set_result(None)
            await future
        finally:
            self._sleepers.remove(entry)

    @property
    def sleeping(self) -> int:
        return sum(1 for _, future in self._sleepers if not future.done())

    def advance_to(self, moment: datetime) -> None:
        assert moment >= self.current, "fake time only moves forward"
        self.current = moment
        for deadline, future in list(self._sleepers):
            if deadline <= moment and not future.done():
                future.set_result(None)


async def wait_until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (real time) for ``check`` to hold; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def pem_to_der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def credentials_for(
    authority: CertificateAuthority, identity: str, now: datetime | None = None
) -> TlsCredentials:
    """A certificate straight from the issuer, for tests that need one without the service."""
    request = make_csr(identity)
    csr = check_csr(request.csr_pem, identity)
    issued = authority.issuer.sign(csr, identity, now or real_now())
    return TlsCredentials(issued.chain_pem, request.key_pem)


@dataclass
class EchoServer:
    """A TLS line-echo server that answers ``<peer identity> <line>``."""

    server: asyncio.Server
    port: int
    peers: list[str | None] = field(default_factory=list)
    open_writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def close(self) -> None:
        for writer in list(self.open_writers):
            writer.close()
        self.server.close()
        await self.server.wait_closed()


async def start_echo_server(context: ssl.SSLContext) -> EchoServer:
    echo: EchoServer

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_identity(writer.get_extra_info("ssl_object"))
        echo.peers.append(peer)
        echo.open_writers.add(writer)
        try:
            while line := await reader.readline():
                writer.write(f"{peer} ".encode() + line)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            echo.open_writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    echo = EchoServer(server, port)
    return echo


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str) -> str:
    writer.write(line.encode() + b"\n")
    await writer.drain()
    reply = await asyncio.wait_for(reader.readline(), 10)
    return reply.decode().rstrip("\n")


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
