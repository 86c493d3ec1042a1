"""A loaded function: its handler (or ASGI app), its init hook, and how a request reaches it.

``load()`` does the import -- separately from serving, so a process that has the runtime
imported already (a fork server) can load a function into a fresh child and then serve.
``App.handle`` is the ``fnmesh.platform.http`` handler: it answers the health path, gives
every request an id, runs sync handlers in a thread pool, turns return values into
responses and a raising handler into a 500 that names the exception and the request id.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import site
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fnmesh.functions.asgi import AsgiAdapter, is_asgi
from fnmesh.functions.request import HttpError, Request
from fnmesh.functions.response import UnsupportedReturn, to_http
from fnmesh.platform.http import Peer
from fnmesh.platform.http import Request as HttpRequest
from fnmesh.platform.http import Response as HttpResponse

HEALTH_PATH = b"/_fnmesh/health"
DEFAULT_THREADS = 32


class LoadError(Exception):
    """The handler could not be imported or found; the message says which and why."""


class App:
    def __init__(self, target: Callable[..., Any], init: Callable[[], Any] | None) -> None:
        self.target = target
        self.init = init
        self.asgi: AsgiAdapter | None = AsgiAdapter(target) if is_asgi(target) else None
        self.is_async = self.asgi is None and inspect.iscoroutinefunction(target)
        self._executor: ThreadPoolExecutor | None = None
        self._threads = DEFAULT_THREADS
        self._running: dict[int, float] = {}  # handler threads running a call: started at
        self.stuck_after = 0.0  # a sync call running longer is stuck (0: never)

    async def start(self, concurrency: int = 0, server: tuple[str, int] | None = None) -> None:
        """Make the thread pool, then run the init hook (or the ASGI lifespan startup)."""
        threads = self._threads = concurrency if concurrency > 0 else DEFAULT_THREADS
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="handler")
        if self.asgi is not None:
            self.asgi.server = server
            await self.asgi.startup()
        if self.init is not None:
            if inspect.iscoroutinefunction(self.init):
                await self.init()
            else:
                result = await asyncio.get_running_loop().run_in_executor(self._executor, self.init)
                if inspect.isawaitable(result):
                    await result

    async def stop(self) -> None:
        """Run the ASGI lifespan shutdown, then let the thread pool go."""
        try:
            if self.asgi is not None:
                await self.asgi.shutdown()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)

    async def handle(self, request: HttpRequest, peer: Peer) -> HttpResponse:
        target = request.target
        if target == HEALTH_PATH or target.startswith(HEALTH_PATH + b"?"):
            wedged = self.wedged(time.monotonic())
            if wedged is not None:
                return HttpResponse(503, [(b"content-type", b"text/plain")], wedged.encode())
            return HttpResponse(200, [(b"content-type", b"text/plain")], b"ok")
        raw_id = request.header(b"x-request-id")
        request_id = raw_id.decode("latin-1") if raw_id else os.urandom(8).hex()
        id_bytes = raw_id or request_id.encode()
        try:
            if self.asgi is not None:
                response = await self.asgi(request, peer, id_bytes)
            else:
                response = to_http(await self._call(Request.from_http(request, request_id)))
        except HttpError as error:
            response = _error(error.status, error.message, request_id)
        except UnsupportedReturn as error:
            _report(request_id, f"{error}", None)
            response = _error(500, str(error), request_id)
        except Exception as error:
            _report(request_id, f"the function raised {type(error).__name__}", error)
            response = _error(500, f"the function raised {type(error).__name__}", request_id)
        if response.header(b"x-request-id") is None:
            response.headers.append((b"x-request-id", id_bytes))
        return response

    def _run(self, request: Request) -> Any:
        """A sync call, in a handler thread, timed for ``wedged`` (a thread that never
        returns stays counted, even after its request was given up)."""
        thread = threading.get_ident()
        self._running[thread] = time.monotonic()
        try:
            return self.target(request)
        finally:
            del self._running[thread]

    def wedged(self, now: float) -> str | None:
        """Why this replica can serve no more (every handler thread stuck), or None."""
        if self.stuck_after <= 0 or len(self._running) < self._threads:
            return None
        running = list(self._running.values())  # written by the handler threads
        stuck = sum(1 for began in running if now - began > self.stuck_after)
        if stuck < self._threads:
            return None
        return (
            f"wedged: all {self._threads} handler threads have been busy for more than"
            f" {self.stuck_after:g}s"
        )

    async def _call(self, request: Request) -> Any:
        if self.is_async:
            return await self.target(request)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self._run, request)
        if inspect.isawaitable(result):
            result = await result
        return result


def _error(status: int, message: str, request_id: str) -> HttpResponse:
    body = json.dumps({"error": message, "requestId": request_id}).encode() + b"\n"
    return HttpResponse(status, [(b"content-type", b"application/json")], body)


def _report(request_id: str, what: str, error: BaseException | None) -> None:
    """Print what went wrong, with the request id, to stderr (the replica's log)."""
    lines = [f"request {request_id}: {what}"]
    if error is not None:
        import traceback

        lines += traceback.format_exception(error)
    sys.stderr.write("\n".join(line.rstrip("\n") for line in lines) + "\n")


def load(source: Path | str, handler: str, sites: Sequence[Path | str] = ()) -> App:
    """Import ``handler`` ("module:attribute") from ``source`` with ``sites`` on the path.

    Raises LoadError for a malformed reference or a missing attribute; exceptions raised
    while importing the user's module propagate as they are (their traceback is the news).
    """
    module_name, _, attribute = handler.partition(":")
    if not module_name or not attribute:
        raise LoadError(
            f"handler {handler!r} is not 'module:attribute' (for example 'main:handle')"
        )
    for folder in sites:
        site.addsitedir(str(folder))
    source_dir = str(Path(source).resolve())
    if source_dir in sys.path:
        sys.path.remove(source_dir)
    sys.path.insert(0, source_dir)
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LoadError(
                f"handler {handler!r}: module {module_name!r} ({module.__file__}) has no"
                f" attribute {attribute!r}; define it or fix 'handler' in fn.yaml"
            ) from None
    if not callable(target):
        raise LoadError(
            f"handler {handler!r} is a {type(target).__name__}, not a function; point it at"
            " 'def handle(req)', 'async def handle(req)' or an ASGI application"
        )
    init = getattr(module, "init", None)
    return App(target, init if callable(init) else None)
