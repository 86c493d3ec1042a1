"""One server connection: an ``asyncio.Protocol`` fed by an httptools request parser.

Parser callbacks collect one message at a time (URL, headers, body); a complete message
becomes a ``Request`` and is handed to the handler in a task. Responses leave in request
order: a request that completes while another is being handled waits in a queue, and
reading pauses until the queue is empty again. Errors the connection answers itself
(400, 408, 413, 431, 503) take their place in that queue and close the connection once
written.

Timeouts are deadlines on the loop's clock that the server's periodic tick enforces
(``ServerState.tick``), so no timer is created or cancelled per request. A request's
deadline runs from its first byte and is never extended by later ones, so a client that
trickles its body cannot hold a connection longer than ``request_timeout``.

Bounds (``ServerLimits``): connections over ``max_connections`` are answered 503 and
closed as soon as they are accepted; body bytes are charged to the server as they arrive
and released when their request is answered, and a request that would take the total
over ``max_buffered_bytes`` is answered 503 with ``retry-after``. Closing after an error
the client may not have finished sending is a *lingering* close: write the answer,
half-close, and discard what still arrives for at most ``LINGER`` seconds, so the client
reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from typing import Any, NoReturn, cast

import httptools

from fnmesh.platform.http.memory import give_back, should_give_back
from fnmesh.platform.http.message import Handler, Peer, Request, Response, ServerLimits
from fnmesh.platform.http.wire import (
    CONTINUE,
    NO_BODY_STATUS,
    connection_names,
    http_date,
    json_error,
    response_head,
    without,
)

logger = logging.getLogger("fnmesh.http")

_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")}
_LARGE_BODY = 64 * 1024  # bodies at least this big are written apart from their head
LINGER = 5.0  # seconds a closing connection keeps discarding what its client still sends
RETRY_AFTER = b"1"  # seconds, in the 503s of a full server
# A queued item: a request with its (keep_alive, http10) flags, or an error that closes.
_Queued = tuple[Request, bool, bool] | Response


class ServerState:
    """What the connections of one server share: handler, limits, counters, clock values."""

    def __init__(self, handler: Handler, limits: ServerLimits, server_header: bytes | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.handler = handler
        self.limits = limits
        self.server_header = server_header
        self.connections: set[HttpConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0
        self.closing = False
        self.date: bytes | None = None  # set by the first tick
        self.drained = asyncio.Event()
        self.turned_away = 0  # connections in ``connections`` being answered 503 and closed
        self.buffered = 0  # request body bytes held now, received but not yet answered
        self.buffered_peak = 0  # the most held since memory was last given back

    @property
    def serving(self) -> int:
        """Connections counted against ``max_connections``."""
        return len(self.connections) - self.turned_away

    def charge(self, size: int) -> bool:
        """Hold ``size`` more body bytes, unless that would go over the server's budget."""
        buffered = self.buffered + size
        if buffered > self.limits.max_buffered_bytes:
            return False
        self.buffered = buffered
        if buffered > self.buffered_peak:
            self.buffered_peak = buffered
        return True

    def release(self, size: int) -> None:
        self.buffered -= size

    def tick(self, wall_clock: float) -> None:
        """Refresh ``date``, expire connections past their deadline, give memory back."""
        self.date = http_date(wall_clock)
        now = self.loop.time()
        for connection in tuple(self.connections):
            if connection.deadline and now >= connection.deadline:
                connection.expire()
        if should_give_back(self.buffered, self.buffered_peak):
            give_back()
            self.buffered_peak = self.buffered

    def task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.check_drained()

    def check_drained(self) -> None:
        if self.closing and not self.connections and not self.tasks:
            self.drained.set()


def peer_of(transport: asyncio.BaseTransport) -> Peer:
    """Who is connected: address, whether over TLS, and the client certificate's identity."""
    name = transport.get_extra_info("peername")
    address = (str(name[0]), int(name[1])) if isinstance(name, tuple) and len(name) >= 2 else None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return Peer(address, False, None)
    return Peer(address, True, first_dns_name(ssl_object.getpeercert()))


def first_dns_name(certificate: dict[str, Any] | None) -> str | None:
    """The first DNS subjectAltName of a certificate as ``getpeercert()`` returns it."""
    for kind, value in (certificate or {}).get("subjectAltName", ()):
        if kind == "DNS":
            return str(value)
    return None


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; the response is kept aside."""


class HttpConnection(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._loop = state.loop
        self._limits = state.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer = Peer(None, False, None)
        self.deadline = 0.0  # loop time after which the connection is closed; 0: none
        # The message being received.
        self._receiving = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0  # also what is charged to the server's buffered bytes
        self._head_size = 0
        self._content_length = 0
        self._began = 0.0  # loop time of the message's first byte
        self._headers_done = False
        self._expect_continue = False
        self._hop_names: set[bytes] | None = None
        self._method = "GET"
        self._keep_alive = True
        self._http10 = False
        # Requests being answered.
        self._busy = False
        self._queue: deque[_Queued] = deque()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False  # no more requests are read from this connection
        self._reject: Response | None = None
        self._pending_continue = False
        self._read_paused = False
        self._write_paused = False
        self._writable: asyncio.Future[None] | None = None
        self._lingering = False  # answered and half-closed: discarding until the client closes
        self._turned_away = False  # over the connection limit

    # -- transport callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peer = peer_of(transport)
        state = self._state
        state.connections.add(self)
        if state.closing:
            transport.close()
            return
        if state.serving > self._limits.max_connections:
            self._turn_away(transport)
            return
        self.deadline = self._loop.time() + self._limits.keep_alive_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        state = self._state
        state.connections.discard(self)
        if self._turned_away:
            self._turned_away = False
            state.turned_away -= 1
        self._stopped = True
        self._drop_message()
        for item in self._queue:
            if not isinstance(item, Response):
                state.release(len(item[0].body))
        self._queue.clear()
        self.deadline = 0.0
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        state.check_drained()

    def eof_received(self) -> bool | None:
        self._stopped = True  # the client sends nothing more; answer what it sent, then close
        return True if self._busy and not self._peer.tls else None

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # What follows an upgrade request is not HTTP: answer what arrived, then close.
            self._stop()
        except httptools.HttpParserError as error:
            reject, self._reject = self._reject, None
            if reject is None:
                if isinstance(error, httptools.HttpParserCallbackError):
                    logger.error("request parsing failed", exc_info=error.__context__)
                    reject = json_error(500, "internal error")
                else:
                    reject = json_error(400, f"malformed request: {error}")
            self._fail(reject)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._receiving = True
        self._headers_done = False
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = self._head_size = self._content_length = 0
        self._expect_continue = False
        self._hop_names = None
        self._began = now = self._loop.time()
        limits = self._limits
        self.deadline = now + min(limits.header_timeout, limits.request_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > self._limits.max_header_bytes:
            self._head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._limits.max_header_bytes:
            self._head_too_large()
        name = name.lower()
        if name not in _SPECIAL:  # the common case: one set lookup per header
            self._headers.append((name, value))
        elif name == b"content-length":
            self._content_length = int(value) if value.strip().isdigit() else 0
        elif name == b"expect":
            self._expect_continue = value.lower() == b"100-continue"
        elif name == b"connection":
            names = connection_names(value)
            if names:
                self._hop_names = (self._hop_names or set()) | names
        # the rest of _SPECIAL is hop-by-hop: dropped

    def on_headers_complete(self) -> None:
        parser = self._parser
        raw = parser.get_method()
        self._method = _METHODS.get(raw) or raw.decode("ascii")
        self._keep_alive = parser.should_keep_alive()
        self._http10 = parser.get_http_version() == "1.0"
        if self._hop_names:
            self._headers = without(self._headers, self._hop_names)
        self._headers_done = True
        limits = self._limits
        if self._content_length > limits.max_body_bytes:
            self._rejecting(
                413, f"request body is larger than the limit of {limits.max_body_bytes} bytes"
            )
        if self._state.buffered + self._content_length > limits.max_buffered_bytes:
            self._over_budget()  # it would not fit now: say so before it is sent
        self.deadline = self._began + limits.request_timeout  # not extended by the body
        if self._expect_continue and not self._http10:
            if self._busy:
                self._pending_continue = True  # after the responses before it
            elif self._transport is not None:
                self._transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        size = len(body)
        if self._body_size + size > self._limits.max_body_bytes:
            self._rejecting(
                413, f"request body is larger than the limit of {self._limits.max_body_bytes} bytes"
            )
        if not self._state.charge(size):
            self._over_budget()
        self._body_size += size
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._receiving = False
        self._pending_continue = False
        self.deadline = 0.0
        parts, self._body = self._body, []  # the connection keeps no buffer between messages
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        del parts
        # The charge now belongs to the request (released once it is answered).
        self._body_size = 0
        request = Request(self._method, self._url, self._headers, body)
        self._headers = []
        keep_alive = self._keep_alive
        if not keep_alive:
            self._stopped = True
        if self._busy:
            self._queue.append((request, keep_alive, self._http10))
            self._pause_reading()
        else:
            self._start(request, keep_alive, self._http10)

    # -- answering ----------------------------------------------------------------------

    def _start(self, request: Request, keep_alive: bool, http10: bool) -> None:
        self._busy = True
        self._track(self._loop.create_task(self._answer(request, keep_alive, http10)))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._task = task
        self._state.tasks.add(task)
        task.add_done_callback(self._state.task_done)

    async def _answer(self, request: Request, keep_alive: bool, http10: bool) -> None:
        state = self._state
        try:
            while True:
                try:
                    state.in_flight += 1
                    try:
                        response = await state.handler(request, self._peer)
                    except Exception:
                        logger.exception(
                            "handler failed on %s %s",
                            request.method,
                            request.target.decode("latin-1"),
                        )
                        response = json_error(500, "internal error")
                    finally:
                        state.in_flight -= 1
                    head_only = request.method == "HEAD"
                    more = await self._send(response, head_only, keep_alive, http10)
                finally:
                    state.release(len(request.body))
                del response
                if not more:
                    return
                item = self._queue.popleft() if self._queue else None
                if item is None:
                    self._idle()
                    return
                if isinstance(item, Response):
                    await self._send(item, False, False, False, linger=True)
                    return
                request, keep_alive, http10 = item
                if not self._queue:
                    self._resume_reading()
        finally:
            self._task = None

    async def _send(
        self,
        response: Response,
        head_only: bool,
        keep_alive: bool,
        http10: bool,
        *,
        linger: bool = False,
    ) -> bool:
        """Write ``response``; True when the connection stays open for the next request.

        ``linger``: the client may still be sending (the request was refused before it
        was read whole), so close by lingering rather than at once.
        """
        transport = self._transport
        if transport is None or transport.is_closing():
            self._busy = False
            return False
        state = self._state
        close = not keep_alive or state.closing or (self._stopped and not self._queue)
        body = response.body
        if head_only or response.status in NO_BODY_STATUS:
            body = b""
        head = response_head(
            response,
            None if head_only and not response.body else len(response.body),
            close=close,
            http10=http10,
            date=state.date,
            server=state.server_header,
        )
        if not body:
            transport.write(head)
        elif len(body) < _LARGE_BODY:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        if self._write_paused:
            await self._drained()
        if close:
            self._busy = False
            if linger:
                self._linger(transport)
            else:
                transport.close()
            return False
        return True

    def _idle(self) -> None:
        self._busy = False
        self._resume_reading()
        if self._receiving:
            if self._pending_continue and self._transport is not None:
                self._pending_continue = False
                self._transport.write(CONTINUE)
        else:
            self.deadline = self._loop.time() + self._limits.keep_alive_timeout

    async def _drained(self) -> None:
        self._writable = self._loop.create_future()
        try:
            await self._writable
        finally:
            self._writable = None

    # -- flow and ending --------------------------------------------------------------------

    def _head_too_large(self) -> NoReturn:
        limit = self._limits.max_header_bytes
        self._rejecting(431, f"request line and headers are larger than {limit} bytes")

    def _rejecting(self, status: int, message: str) -> NoReturn:
        self._reject = json_error(status, message)
        raise _Reject(message)

    def _over_budget(self) -> NoReturn:
        limit = self._limits.max_buffered_bytes
        message = (
            f"the server is holding its limit of {limit} bytes of request bodies; retry shortly"
        )
        self._reject = _retry_later(message)
        raise _Reject(message)

    def _fail(self, response: Response) -> None:
        """Answer ``response`` after what is pending, then close; read nothing more."""
        self._stop()
        self._receiving = False
        self._drop_message()
        if self._busy:
            self._queue.append(response)
        else:
            self._busy = True
            self._track(self._loop.create_task(self._send_error(response)))

    async def _send_error(self, response: Response) -> None:
        try:
            await self._send(response, False, False, False, linger=True)
        finally:
            self._task = None

    def _drop_message(self) -> None:
        """Forget the message being received and release the bytes it was charged."""
        if self._body_size:
            self._state.release(self._body_size)
            self._body_size = 0
        self._body = []

    def _turn_away(self, transport: asyncio.Transport) -> None:
        """Over the connection limit: answer 503 at once and close (lingering)."""
        state = self._state
        self._stopped = True
        if state.turned_away >= self._limits.max_connections:
            transport.abort()  # a flood: even the answer costs too much
            return
        self._turned_away = True
        state.turned_away += 1
        limit = self._limits.max_connections
        response = _retry_later(
            f"Connection limit reached: this server serves at most {limit} connections "
            "at once; retry shortly"
        )
        head = response_head(
            response, len(response.body), close=True, http10=False, date=state.date, server=None
        )
        transport.write(head + response.body)
        self._linger(transport)

    def _linger(self, transport: asyncio.Transport) -> None:
        """The last answer is written: half-close, then discard what the client still
        sends until it closes or ``LINGER`` seconds pass, so that it reads the answer
        rather than a reset. Without half-close (TLS) the connection is closed at once."""
        self._stopped = True
        if not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        transport.write_eof()
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self.deadline = self._loop.time() + LINGER

    def _stop(self) -> None:
        self._stopped = True
        self.deadline = 0.0
        self._pause_reading()

    def _pause_reading(self) -> None:
        if not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and not self._stopped and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()

    def expire(self) -> None:
        """The deadline passed: idle too long, a request too slow to arrive (408), or a
        lingering close that the client did not end in time."""
        transport = self._transport
        if transport is None:
            return
        if self._lingering:
            transport.abort()
        elif self._receiving:
            if self._read_paused and not self._stopped:
                # Held back by this server (earlier responses pending), not by the client.
                self._began = self._loop.time()
                self.deadline = self._began + self._limits.request_timeout
                return
            limits = self._limits
            if self._headers_done:
                what, took = "request", limits.request_timeout
            else:
                what = "request line and headers"
                took = min(limits.header_timeout, limits.request_timeout)
            self._fail(json_error(408, f"the {what} did not arrive within {took:g} seconds"))
        elif not self._busy:
            self._stopped = True
            transport.close()

    def shutdown(self) -> None:
        """The server is closing: close now if idle, else after the current response."""
        if not self._busy and not self._receiving and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drain time is over: cancel the handler and drop the connection."""
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.abort()


def _retry_later(message: str) -> Response:
    response = json_error(503, message)
    response.headers.append((b"retry-after", RETRY_AFTER))
    return response


_HOP = frozenset(
    {b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# Headers the connection reads itself or drops rather than pass on.
_SPECIAL = _HOP | {b"content-length", b"expect", b"connection"}
