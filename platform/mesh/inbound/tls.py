"""The inbound listener: accepts TCP, terminates mTLS, then speaks HTTP/1.1.

The server context requires a client certificate chaining to the trust anchor, so a
plaintext client or a certificate from another authority fails at the handshake and never
reaches a layer. Connections are accepted here and their handshake awaited
(``loop.connect_accepted_socket(ssl=...)``) rather than left to ``create_server(ssl=...)``,
which swallows handshake failures: this way each refusal is counted by reason and logged
-- once per peer address per ``RefusalLog.every`` seconds, with how many more were refused
meanwhile, so a misconfigured client cannot flood the log. (Upgrading an accepted plain
connection with ``start_tls`` is no alternative: uvloop starts reading right after
``connection_made`` and the ClientHello can be lost before the upgrade.) A connection
that completes the handshake is handed to the HTTP server protocol of
``fnmesh.platform.http``; ``HttpServer.close`` drains it like any other.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Protocol, cast

from fnmesh.platform.http import Handler, HttpServer, ServerLimits
from fnmesh.platform.http.connection import HttpConnection, ServerState

log = logging.getLogger("fnmesh.mesh.inbound")

HANDSHAKE_TIMEOUT = 10.0


class ConnectionCounter(Protocol):
    def connection_opened(self) -> None: ...

    def handshake_failed(self, reason: str) -> None: ...


def refusal_reason(error: BaseException) -> str:
    """A short, bounded label for why a handshake failed (a metric label value)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return "untrusted_certificate"
    if isinstance(error, ssl.SSLError):
        reason = (error.reason or "").upper()
        if reason in ("HTTP_REQUEST", "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL"):
            return "plaintext" if reason != "UNSUPPORTED_PROTOCOL" else "protocol_version"
        if reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED"):
            return "no_client_certificate"
        if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
            return "untrusted_certificate"
        if "EOF" in reason:
            return "closed"
        return "tls_error"
    if isinstance(error, ConnectionAbortedError | TimeoutError) and "longer" in str(error):
        return "timeout"
    if isinstance(error, ConnectionError | EOFError):
        return "closed"
    return "other"


class RefusalLog:
    """Decides which refusals to log (pure): the first per address, then one per period."""

    def __init__(self, every: float = 60.0, capacity: int = 1024) -> None:
        self.every = every
        self.capacity = capacity
        self._seen: dict[str, tuple[float, int]] = {}  # address -> (last logged, suppressed)

    def should_log(self, address: str, now: float) -> int | None:
        """None to stay quiet; else how many refusals from ``address`` went unlogged."""
        seen = self._seen.get(address)
        if seen is not None and now - seen[0] < self.every:
            self._seen[address] = (seen[0], seen[1] + 1)
            return None
        if seen is None and len(self._seen) >= self.capacity:
            self._forget(now)
        self._seen[address] = (now, 0)
        return seen[1] if seen is not None else 0

    def _forget(self, now: float) -> None:
        for address, (logged, _) in list(self._seen.items()):
            if now - logged >= self.every:
                del self._seen[address]
        if len(self._seen) >= self.capacity:  # all recent: drop the oldest half
            for address in sorted(self._seen, key=lambda a: self._seen[a][0])[: self.capacity // 2]:
                del self._seen[address]


class TlsListener:
    """Accepts connections, runs their handshakes, and hands them to the HTTP protocol.

    It is also the listening side of the ``HttpServer`` built on it: ``sockets``,
    ``close()`` (stop accepting) and ``wait_closed()`` are what ``HttpServer.close`` uses.
    """

    def __init__(
        self,
        sock: socket.socket,
        state: ServerState,
        context: ssl.SSLContext,
        counter: ConnectionCounter,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.sock = sock
        self.state = state
        self.context = context
        self.counter = counter
        self.handshake_timeout = handshake_timeout
        self.refusals = refusals or RefusalLog()
        self.handshakes: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self.sock,)

    @property
    def handshaking(self) -> int:
        return len(self.handshakes)

    def start(self) -> None:
        self._accepting = self.state.loop.create_task(self._accept_forever())

    def close(self) -> None:
        """Stop accepting (handshakes under way go on; ``cancel_handshakes`` ends them)."""
        accepting = self._accepting
        if accepting is not None and not accepting.done():
            accepting.cancel()  # the socket closes once the loop has stopped watching it
            accepting.add_done_callback(lambda _: self.sock.close())
        else:
            self.sock.close()

    async def wait_closed(self) -> None:
        if self._accepting is not None:
            await asyncio.gather(self._accepting, return_exceptions=True)

    def cancel_handshakes(self) -> None:
        for task in tuple(self.handshakes):
            task.cancel()

    async def _accept_forever(self) -> None:
        loop = self.state.loop
        while True:
            try:
                connection, address = await loop.sock_accept(self.sock)
            except OSError as error:  # out of file descriptors, say: let some close first
                log.error("accepting a connection failed: %s", error)
                await asyncio.sleep(0.1)
                continue
            self.counter.connection_opened()
            if self.state.closing:
                connection.close()
                continue
            task = loop.create_task(self._handshake(connection, address))
            self.handshakes.add(task)
            task.add_done_callback(self.handshakes.discard)

    async def _handshake(self, connection: socket.socket, address: object) -> None:
        """TLS first; the HTTP protocol sees the connection only once the handshake is done."""
        if connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = self.state
        try:
            await state.loop.connect_accepted_socket(
                lambda: HttpConnection(state),
                connection,
                ssl=self.context,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except asyncio.CancelledError:
            connection.close()
            raise
        except Exception as error:
            connection.close()
            self._refused(address, error)

    def _refused(self, peer: object, error: BaseException) -> None:
        reason = refusal_reason(error)
        self.counter.handshake_failed(reason)
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        suppressed = self.refusals.should_log(address, self.state.loop.time())
        if suppressed is None:
            return
        more = f" ({suppressed} more refused since the last report)" if suppressed else ""
        # A peer hanging up mid-handshake is often a TCP probe: worth less than a warning.
        level = logging.INFO if reason == "closed" else logging.WARNING
        log.log(
            level,
            "refused a connection from %s at the TLS handshake (%s): %s%s",
            address,
            reason.replace("_", " "),
            str(error) or type(error).__name__,
            more,
        )


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A non-blocking TCP socket listening on ``host:port`` (port 0: any free port)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_mtls(
    handler: Handler,
    host: str,
    port: int,
    *,
    context: ssl.SSLContext,
    counter: ConnectionCounter,
    limits: ServerLimits = ServerLimits(),  # noqa: B008  # frozen: sharing one is safe
    refusals: RefusalLog | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> tuple[HttpServer, TlsListener]:
    """Listen on ``host:port`` for mTLS connections served by ``handler``."""
    state = ServerState(handler, limits, None)
    listener = TlsListener(
        listening_socket(host, port),
        state,
        context,
        counter,
        handshake_timeout=handshake_timeout,
        refusals=refusals,
    )
    listener.start()
    # HttpServer drives a listener through sockets/close()/wait_closed(), which this has.
    return HttpServer(cast(asyncio.Server, listener), state), listener
