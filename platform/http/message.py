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
    max_body_bytes: int = 10 * 1024 * 1024  # over -> 413 with a JSON error body
    max_header_bytes: int = 64 * 1024  # request line and headers; over -> 431
    keep_alive_timeout: float = 75.0  # idle keep-alive connections are closed after this
    header_timeout: float = 30.0  # request headers slower than this -> connection closed
