"""One client connection to an upstream: sends a request, parses one response at a time.

``send`` returns a future for the response. The future fails with ``ResetError`` when
the connection ends early (``received`` then tells whether any response byte had
arrived), with ``ProtocolError`` on an unparsable or oversize response, and with
``UpstreamTimeout`` when ``time_out`` is called first. After a complete response,
``reusable`` says whether the connection may carry another request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import cast

import httptools

from fnmesh.platform.http.errors import ProtocolError, ResetError, UpstreamError, UpstreamTimeout
from fnmesh.platform.http.message import Response
from fnmesh.platform.http.wire import UNFORWARDED, connection_names, without

MAX_HEAD_BYTES = 64 * 1024
_LARGE_BODY = 64 * 1024


class _Stop(Exception):
    """Raised in a parser callback to stop parsing (the outcome is already decided)."""


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = False
        self.received = False  # a byte of the current response arrived
        self.idle_since = 0.0
        self._head_only = False
        self._limit = 0
        self._status = 0
        self._interim = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._hop_names: set[bytes] | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0
        self._framed = False  # content-length or chunked: the end is known without EOF
        self._headers_done = False

    # -- transport callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed and not self._interim:
            self._complete()  # a body delimited by the end of the connection
            return
        reason = f": {exc}" if exc else ""
        if self.received:
            self._fail(ResetError(f"the upstream closed the connection mid-response{reason}"))
        else:
            self._fail(ResetError(f"the upstream closed the connection before answering{reason}"))

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # nothing was asked: the connection is out of step
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the upstream switched protocols, which is not supported"))
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, _Stop):
                return
            if isinstance(error.__context__, UpstreamError):
                self._fail(error.__context__)
            else:
                self._fail(ProtocolError(f"the upstream sent a malformed response: {error}"))

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._hop_names = None
        self._body = []
        self._size = self._head_size = 0
        self._framed = self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD_BYTES:
            raise ProtocolError(f"the upstream's response headers exceed {MAX_HEAD_BYTES} bytes")
        name = name.lower()
        if name in UNFORWARDED:
            if name == b"content-length":
                self._framed = True
            elif name == b"transfer-encoding":
                self._framed = self._framed or b"chunked" in value.lower()
            elif name == b"connection":
                names = connection_names(value)
                if names:
                    self._hop_names = (self._hop_names or set()) | names
            return
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self._status = status
        self._interim = 100 <= status < 200
        self._headers_done = True
        if self._interim:
            return
        if self._hop_names:
            self._headers = without(self._headers, self._hop_names)
        if status in (204, 304):
            self._framed = True
        elif self._head_only:
            # llhttp cannot be told that a response to HEAD has no body: finish here and
            # start the next response on a fresh parser.
            keep_alive = self._parser.should_keep_alive()
            self._parser = httptools.HttpResponseParser(self)
            self._complete(keep_alive)
            raise _Stop

    def on_body(self, body: bytes) -> None:
        if self._interim:
            return
        self._size += len(body)
        if self._size > self._limit:
            raise ProtocolError(f"the upstream's response body exceeds {self._limit} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._interim:  # 100 Continue, 103 Early Hints: the real response follows
            self._interim = False
            self._headers_done = False
            return
        self._complete(self._parser.should_keep_alive())

    # -- requests -----------------------------------------------------------------------

    def send(
        self, head: bytes, body: bytes, *, head_only: bool, limit: int
    ) -> asyncio.Future[Response]:
        """Write one request; the future resolves with its response."""
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self.received = self.reusable = False
        self._head_only = head_only
        self._limit = limit
        self._interim = self._headers_done = False
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            waiter.set_exception(ResetError("the connection was closed before the request"))
            return waiter
        if not body:
            transport.write(head)
        elif len(body) < _LARGE_BODY:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        return waiter

    def time_out(self, timeout: float) -> None:
        """The request's time is up: fail it and drop the connection."""
        self._fail(UpstreamTimeout(f"no complete response within {timeout:g}s"))

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self.closed = True
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    def _complete(self, keep_alive: bool = False) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        parts, self._body = self._body, []  # a pooled connection keeps no body between uses
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self.reusable = keep_alive and not self.closed
        self._waiter = None
        waiter.set_result(Response(self._status, self._headers, body))

    def _fail(self, error: UpstreamError) -> None:
        waiter = self._waiter
        self._waiter = None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
