"""Serving: ``serve()`` binds a handler to a socket and returns a running ``HttpServer``.

One periodic tick per server (at most once a second, more often when a timeout is short)
refreshes the cached ``date`` value, closes connections past their deadline and, after a
burst of large bodies, gives the freed memory back (``memory``).

Closing is graceful, in fixed steps (``HttpServer.close``):

1. stop accepting new connections;
2. close idle keep-alive connections; a connection with a request being received or
   handled answers it with ``connection: close`` and then closes;
3. wait until every connection has closed and every handler has returned, at most
   ``drain_timeout`` seconds;
4. cancel the handlers still running and abort their connections;
5. return.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl as ssl_module
import time

from fnmesh.platform.http.connection import HttpConnection, ServerState
from fnmesh.platform.http.message import Handler, ServerLimits

_TICK_MAX = 1.0
_TICK_MIN = 0.05
_ABORT_GRACE = 1.0  # after aborting, how long close() waits for the connections to go


class HttpServer:
    """A running server. ``port`` is the bound port (the one chosen when asked for 0)."""

    def __init__(self, server: asyncio.Server, state: ServerState) -> None:
        self._server = server
        self._state = state
        name = server.sockets[0].getsockname()
        self.host: str = str(name[0]) if isinstance(name, tuple) else str(name)
        self.port: int = int(name[1]) if isinstance(name, tuple) else 0
        self._closed: asyncio.Future[None] | None = None
        limits = state.limits
        shortest = min(limits.keep_alive_timeout, limits.header_timeout, limits.request_timeout)
        self._every = max(_TICK_MIN, min(_TICK_MAX, shortest / 4))
        self._timer: asyncio.TimerHandle | None = None
        self._tick()

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._state.connections)

    @property
    def buffered(self) -> int:
        """Request body bytes held now: received, and not yet answered."""
        return self._state.buffered

    @property
    def in_flight(self) -> int:
        """Requests whose handler is running now."""
        return self._state.in_flight

    def _tick(self) -> None:
        self._state.tick(time.time())
        self._timer = self._state.loop.call_later(self._every, self._tick)

    async def close(self, drain_timeout: float = 10.0) -> None:
        """Stop serving gracefully in the steps of the module docstring; safe to call twice."""
        if self._closed is not None:
            await asyncio.shield(self._closed)
            return
        self._closed = self._state.loop.create_future()
        try:
            await self._close(drain_timeout)
        finally:
            self._closed.set_result(None)

    async def _close(self, drain_timeout: float) -> None:
        state = self._state
        self._server.close()  # 1. stop accepting
        state.closing = True
        for connection in tuple(state.connections):  # 2. close what is idle
            connection.shutdown()
        state.check_drained()
        with contextlib.suppress(TimeoutError):  # 3. let in-flight requests finish
            await asyncio.wait_for(state.drained.wait(), drain_timeout)
        if not state.drained.is_set():  # 4. cancel what is left
            for task in tuple(state.tasks):
                task.cancel()
            for connection in tuple(state.connections):
                connection.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.drained.wait(), _ABORT_GRACE)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), _ABORT_GRACE)


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl: ssl_module.SSLContext | None = None,
    limits: ServerLimits = ServerLimits(),  # noqa: B008  # frozen: sharing one is safe
    sock: socket.socket | None = None,
    server_header: bytes | None = None,
) -> HttpServer:
    """Serve ``handler`` on ``host:port`` (or on ``sock``, already bound) until closed."""
    state = ServerState(handler, limits, server_header)
    loop = state.loop
    if sock is not None:
        server = await loop.create_server(
            lambda: HttpConnection(state), sock=sock, ssl=ssl, backlog=1024
        )
    else:
        server = await loop.create_server(
            lambda: HttpConnection(state), host, port, ssl=ssl, backlog=1024
        )
    return HttpServer(server, state)
