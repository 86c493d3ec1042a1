"""The upstream side: a pool of keep-alive connections per (host, port, TLS name, context).

A request takes the most recently used idle connection of its key (LIFO keeps few
connections warm) or opens a new one. A request that fails on a *reused* connection
before any response byte arrived is retried once on a fresh connection: the upstream
may have closed the idle connection just as it was picked (the stale keep-alive race).
Nothing is retried once a response byte has arrived.

A ``host`` that is an absolute path with port 0 is a Unix socket (a replica proxy reaches
its function runtime that way); its ``host`` header is ``localhost``.

The pool adds no header but ``host`` (when the request has none) and frames the body
with ``content-length``.

Up to ``max_idle_per_host`` (512) idle connections per key are kept: on the data path a
replica may well have hundreds of requests in flight, and every connection not kept
after such a burst is a new TCP and TLS handshake for the next one (at 64, a load of 128
concurrent requests through the gateway opened 300 mTLS connections a second and halved
its throughput). Keeping them costs little: LIFO leaves the surplus unused, and it is
closed after ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module

from fnmesh.platform.http.errors import ConnectError, ResetError
from fnmesh.platform.http.message import Request, Response
from fnmesh.platform.http.upstream import UpstreamConnection
from fnmesh.platform.http.wire import request_head

_Key = tuple[str, int, str | None, int]


class ConnectionPool:
    def __init__(self, *, max_idle_per_host: int = 512, idle_timeout: float = 30.0) -> None:
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        self._idle: dict[_Key, list[UpstreamConnection]] = {}
        self._hosts: dict[tuple[str, int, bool], bytes] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False
        # The loop the pool runs on, looked up once: on Python 3.11, get_running_loop()
        # costs a getpid() system call, and a request would make two of them.
        self._loop: asyncio.AbstractEventLoop | None = None
        self.opened = 0  # connections opened so far (for metrics and tests)

    async def request(
        self,
        host: str,
        port: int,
        request: Request,
        *,
        timeout: float,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        max_body_bytes: int = 64 * 1024 * 1024,
    ) -> Response:
        """Send ``request`` to ``host:port`` and return the whole response.

        Raises ConnectError, ResetError, UpstreamTimeout or ProtocolError (see errors.py).
        """
        if self._closed:
            raise ConnectError("the connection pool is closed")
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (host, port, server_hostname, id(ssl))
        head = request_head(request, self._host_header(host, port, ssl is not None))
        head_only = request.method == "HEAD"
        connection = self._take(key, loop.time())
        if connection is not None:
            try:
                return await self._exchange(
                    loop,
                    key,
                    connection,
                    head,
                    request.body,
                    head_only,
                    max_body_bytes,
                    deadline,
                    timeout,
                )
            except ResetError:
                if connection.received:
                    raise
        connection = await self._connect(host, port, ssl, server_hostname, deadline)
        return await self._exchange(
            loop, key, connection, head, request.body, head_only, max_body_bytes, deadline, timeout
        )

    async def close(self) -> None:
        """Close every idle connection; connections in use close when their request ends."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def idle_count(self, host: str, port: int) -> int:
        """Idle connections kept for ``host:port`` (any TLS settings)."""
        return sum(
            len([c for c in connections if not c.closed])
            for key, connections in self._idle.items()
            if key[:2] == (host, port)
        )

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        key: _Key,
        connection: UpstreamConnection,
        head: bytes,
        body: bytes,
        head_only: bool,
        limit: int,
        deadline: float,
        timeout: float,
    ) -> Response:
        waiter = connection.send(head, body, head_only=head_only, limit=limit)
        timer = loop.call_at(deadline, connection.time_out, timeout)
        try:
            response = await waiter
        except BaseException:
            connection.abort()
            raise
        finally:
            timer.cancel()
        if connection.reusable:
            self._keep(key, connection, loop)
        else:
            connection.close()
        return response

    async def _connect(
        self,
        host: str,
        port: int,
        ssl: ssl_module.SSLContext | None,
        server_hostname: str | None,
        deadline: float,
    ) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                if port == 0 and host.startswith("/"):
                    _, connection = await loop.create_unix_connection(
                        lambda: UpstreamConnection(loop), host
                    )
                else:
                    _, connection = await loop.create_connection(
                        lambda: UpstreamConnection(loop),
                        host,
                        port,
                        ssl=ssl,
                        server_hostname=server_hostname if ssl is not None else None,
                    )
        except TimeoutError:
            raise ConnectError(f"connecting to {_where(host, port)} timed out") from None
        except OSError as error:
            raise ConnectError(f"cannot connect to {_where(host, port)}: {error}") from None
        self.opened += 1
        return connection

    def _take(self, key: _Key, now: float) -> UpstreamConnection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self.idle_timeout:
                return connection
            connection.close()
        return None

    def _keep(
        self, key: _Key, connection: UpstreamConnection, loop: asyncio.AbstractEventLoop
    ) -> None:
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = []
        if self._closed or len(idle) >= self.max_idle_per_host:
            connection.close()
            return
        connection.idle_since = loop.time()
        idle.append(connection)
        if self._sweep is None:
            self._sweep = loop.call_later(self.idle_timeout / 2, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close connections idle longer than ``idle_timeout`` (oldest are first in line)."""
        self._sweep = None
        now = loop.time()
        for key, idle in list(self._idle.items()):
            keep = [c for c in idle if not c.closed and now - c.idle_since < self.idle_timeout]
            for connection in idle:
                if connection not in keep:
                    connection.close()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        if self._idle and not self._closed:
            self._sweep = loop.call_later(self.idle_timeout / 2, self._expire, loop)

    def _host_header(self, host: str, port: int, tls: bool) -> bytes:
        value = self._hosts.get((host, port, tls))
        if value is None and port == 0 and host.startswith("/"):
            value = self._hosts[(host, port, tls)] = b"localhost"
        if value is None:
            name = f"[{host}]" if ":" in host else host
            try:
                encoded = name.encode("ascii")
            except UnicodeEncodeError:
                encoded = name.encode("idna")
            value = encoded if port == (443 if tls else 80) else b"%s:%d" % (encoded, port)
            self._hosts[(host, port, tls)] = value
        return value


def _where(host: str, port: int) -> str:
    return f"unix:{host}" if port == 0 and host.startswith("/") else f"{host}:{port}"
