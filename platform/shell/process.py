"""Running an entry point as a process: configuration once, logging, the loop, signals.

``run(name, load, main)`` does, in this order:

1. ``load()`` -- the entry point's typed configuration, read once -- and the log level
   (``FNMESH_LOG_LEVEL``). Every problem is printed as ``<name>: <problem>`` (a
   ``ValidationError`` names each field) and the process exits 2 before anything starts.
2. Logging to stderr at that level, one format for every entry point.
3. ``main(shell, config)`` on a uvloop event loop, SIGINT and SIGTERM setting
   ``shell.stopping``. ``main`` starts its components, registering how each stops
   (``shell.on_stop``) as it starts, then waits for ``shell.wait()``. A ``CannotStart``,
   or one of ``start_errors``, is printed as ``<name>: <why>`` and the exit status is 1.
4. The stop steps, last-started first (``stops.Stops``), however ``main`` ended.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

from starlette.types import ASGIApp

from fnmesh.platform.shell.asgi import AsgiServer
from fnmesh.platform.shell.home import hold_home
from fnmesh.platform.shell.listeners import listen
from fnmesh.platform.shell.stops import Step, Stops

EXIT_OK, EXIT_START, EXIT_CONFIG = 0, 1, 2
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

C = TypeVar("C")


class CannotStart(Exception):
    """The entry point cannot start; the message says why and what to do about it."""


class Shell:
    """One process's life: its stop event and the steps that stop what it started."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stops = Stops()
        self.stopping = asyncio.Event()

    def on_stop(self, what: str, step: Step) -> None:
        """Run ``step`` at stop, before every step registered earlier."""
        self.stops.add(what, step)

    async def wait(self) -> None:
        """Until SIGINT or SIGTERM (or ``stopping`` is set)."""
        await self.stopping.wait()

    def hold_home(self, home: Path) -> None:
        """Make and hold ``home`` (``HomeLocked`` when another platform holds it), until
        the last stop step."""
        handle = hold_home(home)
        self.on_stop("home's lock", handle.close)

    def listen(self, host: str, port: int) -> socket.socket:
        """A socket bound to ``host:port`` (0: any free port), closed at stop."""
        sock = listen(host, port)
        self.on_stop(f"listener on {host}:{sock.getsockname()[1]}", sock.close)
        return sock

    async def serve_asgi(
        self, what: str, app: ASGIApp, sock: socket.socket, tls: ssl.SSLContext | None = None
    ) -> AsgiServer:
        """Serve ``app`` on ``sock``; at stop it stops accepting and finishes requests."""
        server = AsgiServer(app, tls=tls)
        await server.start(sock)
        self.on_stop(what, server.stop)
        return server


def refuse(name: str, error: object, code: int = EXIT_CONFIG) -> int:
    """Say on stderr why ``name`` cannot run; the exit status."""
    print(f"{name}: {error}", file=sys.stderr, flush=True)
    return code


def log_level(env: Mapping[str, str]) -> tuple[str, str | None]:
    """The level ``FNMESH_LOG_LEVEL`` names (INFO when unset), and the problem if any."""
    raw = env.get("FNMESH_LOG_LEVEL", "")
    level = raw.strip().upper() or "INFO"
    if level in LOG_LEVELS:
        return level, None
    return "INFO", f"FNMESH_LOG_LEVEL: must be one of {', '.join(LOG_LEVELS)}, not {raw!r}"


def run(
    name: str,
    load: Callable[[], C],
    main: Callable[[Shell, C], Awaitable[int | None]],
    *,
    start_errors: tuple[type[Exception], ...] = (),
    env: Mapping[str, str] | None = None,
) -> int:
    """Run an entry point (see the module's docstring); the exit status."""
    level, problem = log_level(os.environ if env is None else env)
    try:
        config = load()
    except ValueError as error:
        refuse(name, error)
        if problem is not None:
            refuse(name, problem)
        return EXIT_CONFIG
    if problem is not None:
        return refuse(name, problem)
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)

    async def live() -> int:
        shell = Shell(name)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, shell.stopping.set)
        try:
            code = await main(shell, config)
        except CannotStart as error:
            code = refuse(name, error, EXIT_START)
        except start_errors as error:
            code = refuse(name, error, EXIT_START)
        finally:
            await shell.stops.run()
        return EXIT_OK if code is None else code

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(live())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(live())
