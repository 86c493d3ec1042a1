"""An ASGI app (the control plane's Starlette apps) served by uvicorn on a bound socket.

uvicorn's own signal handlers are left out: the shell owns SIGINT/SIGTERM and stops the
servers as steps of its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

import uvicorn
from starlette.types import ASGIApp

STOP_TIMEOUT = 5.0


class AsgiServer:
    def __init__(self, app: ASGIApp, *, tls: ssl.SSLContext | None = None) -> None:
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        config.load()
        # uvicorn makes contexts from files only; a context given here may be renewed in
        # place, so new handshakes present the current certificate
        config.ssl = tls
        self.server = uvicorn.Server(config)
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._task: asyncio.Task[None] | None = None

    async def start(self, sock: socket.socket) -> None:
        """Serve on ``sock``; returns once the server accepts (raises when it cannot)."""
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop accepting, then let requests in flight finish for at most ``timeout``."""
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout)
