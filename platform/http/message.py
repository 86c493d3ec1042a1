"""The values everything on the data path speaks: Request, Response, Peer, Handler.

Messages are buffered: a body is read whole (within limits) before a handler sees it.
Header names are lower-case bytes, in order, without hop-by-hop headers and without
``content-length`` (the writer sets it from the body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Request:
    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end of a server connection."""

    address: tuple[str, int] | None
    tls: bool
    identity: str | None  # the client certificate's first DNS subjectAltName, if any


Handler = Callable[[Request, Peer], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one server (one listener) may take from its clients; every excess is answered.

    - ``max_connections``: connections served at once; one more is answered 503
      ``Connection limit reached`` with ``connection: close`` and closed.
    - ``request_timeout``: the whole request (head and body), from its first byte; never
      extended by the arrival of more bytes. Over -> 408 and the connection is closed.
    - ``max_buffered_bytes``: request body bytes held at once by all connections, from the
      first byte received until the request is answered. A request that would go over it
      is answered 503 with ``retry-after``.
    """

    max_body_bytes: int = 10 * 1024 * 1024  # over -> 413 with a JSON error body
    max_header_bytes: int = 64 * 1024  # request line and headers; over -> 431
    keep_alive_timeout: float = 75.0  # idle keep-alive connections are closed after this
    header_timeout: float = 30.0  # request line and headers slower than this -> 408
    request_timeout: float = 60.0  # head and body slower than this -> 408
    max_connections: int = 1024  # over -> 503 and close
    max_buffered_bytes: int = 128 * 1024 * 1024  # over -> 503 with retry-after
