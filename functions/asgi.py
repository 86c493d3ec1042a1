"""The escape hatch: serve an ASGI 3 application (Starlette, FastAPI, ...) as the handler.

Minimal by design: HTTP scopes with the whole body in one ``http.request`` message and the
response collected whole; the lifespan protocol when the application supports it (an
application that raises on the lifespan scope before answering is taken not to).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fnmesh.platform.http import Peer
from fnmesh.platform.http import Request as HttpRequest
from fnmesh.platform.http import Response as HttpResponse

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class LifespanFailed(Exception):
    """The application reported that its startup (or shutdown) failed."""


def is_asgi(obj: object) -> bool:
    """True for an async callable taking ``(scope, receive, send)``."""
    if not callable(obj):
        return False
    target: Any = obj
    if not inspect.iscoroutinefunction(target):
        target = getattr(obj, "__call__", None)  # noqa: B004  # an instance with async __call__
        if not inspect.iscoroutinefunction(target):
            return False
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 3


class AsgiAdapter:
    def __init__(self, app: AsgiApp, server: tuple[str, int] | None = None) -> None:
        self.app = app
        self.server = server
        self.state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._shutdown = asyncio.Event()
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._supported = True

    # -- lifespan -----------------------------------------------------------------------

    async def startup(self) -> None:
        """Run the lifespan startup; LifespanFailed when the application reports failure."""
        self._lifespan = asyncio.ensure_future(self._run_lifespan())
        waiting = asyncio.ensure_future(self._events.get())
        done, _ = await asyncio.wait({waiting, self._lifespan}, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            waiting.cancel()
            self._supported = False  # returned or raised without a word: no lifespan support
            return
        event = waiting.result()
        if event["type"] == "lifespan.startup.failed":
            raise LifespanFailed(event.get("message") or "the application's startup failed")

    async def shutdown(self) -> None:
        if self._lifespan is None or not self._supported or self._lifespan.done():
            return
        self._shutdown.set()
        event = await self._events.get()
        if event["type"] == "lifespan.shutdown.failed":
            raise LifespanFailed(event.get("message") or "the application's shutdown failed")

    async def _run_lifespan(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        started = False

        async def receive() -> Message:
            nonlocal started
            if not started:
                started = True
                return {"type": "lifespan.startup"}
            await self._shutdown.wait()
            return {"type": "lifespan.shutdown"}

        async def send(message: Message) -> None:
            await self._events.put(message)

        try:
            await self.app(scope, receive, send)
        except Exception as error:
            if not started:
                return  # raised before asking for the startup event: no lifespan support
            reason = f"the application raised {type(error).__name__}: {error}"
            phase = "shutdown" if self._shutdown.is_set() else "startup"
            await self._events.put({"type": f"lifespan.{phase}.failed", "message": reason})

    # -- requests -----------------------------------------------------------------------

    async def __call__(self, request: HttpRequest, peer: Peer, request_id: bytes) -> HttpResponse:
        raw_path, _, query = request.target.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            from urllib.parse import unquote

            path = unquote(path)
        headers = list(request.headers)
        if request.header(b"x-request-id") is None:
            headers.append((b"x-request-id", request_id))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": peer.address,
            "server": self.server,
            "state": dict(self.state),
        }
        body_sent = False
        finished = asyncio.Event()
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    response_headers.append((bytes(name).lower(), bytes(value)))
            elif kind == "http.response.body":
                if not status:
                    raise RuntimeError("http.response.body was sent before http.response.start")
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    finished.set()

        try:
            await self.app(scope, receive, send)
        finally:
            finished.set()
        if not status:
            raise RuntimeError("the ASGI application returned without sending a response")
        return HttpResponse(status, response_headers, b"".join(chunks))
