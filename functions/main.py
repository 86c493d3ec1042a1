"""``python -m fnmesh.functions``: serve one function over HTTP on loopback.

    python -m fnmesh.functions --source DIR --handler module:attr [--site DIR]...
        [--host 127.0.0.1] [--port 0] [--ready-fd N] [--concurrency N] [--drain-timeout S]

Start-up order: the ``--site`` folders are added, ``--source`` goes first on ``sys.path``,
the handler is imported, the init hook runs, the server listens, and ``ready <port>`` is
written to ``--ready-fd`` (which is then closed). SIGTERM or SIGINT drains in-flight
requests and exits 0.

Exit status: 0 after a graceful stop, 1 when the address cannot be bound, 2 for bad
arguments, 3 when the handler cannot be imported, 4 when the init hook fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fnmesh.functions.app import App, load
from fnmesh.platform.http import serve

EXIT_BIND = 1
EXIT_IMPORT = 3
EXIT_INIT = 4


@dataclass(frozen=True, slots=True)
class Options:
    source: Path
    handler: str
    sites: tuple[Path, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    ready_fd: int | None = None
    concurrency: int = 0
    drain_timeout: float = 30.0
    listen_fd: int | None = None  # a listening socket handed over (a Unix socket)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m fnmesh.functions",
        description="Serve one fnmesh function over HTTP.",
    )
    parser.add_argument("--source", required=True, type=Path, help="the function's folder")
    parser.add_argument("--handler", required=True, help="module:attribute, e.g. main:handle")
    parser.add_argument(
        "--site", action="append", default=[], type=Path,
        help="a dependency folder (pip install --target); repeatable",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0") or 0))
    parser.add_argument("--ready-fd", type=int, default=None, help="write 'ready <port>' here")
    parser.add_argument(
        "--concurrency", type=int, default=0,
        help="threads for sync handlers (0: 32)",
    )  # fmt: skip
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    return Options(
        source=args.source,
        handler=args.handler,
        sites=tuple(args.site),
        host=args.host,
        port=args.port,
        ready_fd=args.ready_fd,
        concurrency=args.concurrency,
        drain_timeout=args.drain_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    _line_buffered()
    options = parse_args(argv)
    try:
        app = load(options.source, options.handler, options.sites)
    except (Exception, SystemExit):
        traceback.print_exc()
        print(f"fnmesh: could not load handler {options.handler!r}", file=sys.stderr)
        return EXIT_IMPORT
    return run(app, options)


def run(app: App, options: Options) -> int:
    """Serve ``app`` until SIGTERM/SIGINT; the exit status (see the module docstring)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_serve(app, options))
    return uvloop.run(_serve(app, options))


async def _serve(app: App, options: Options) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await app.start(options.concurrency)
    except Exception:
        traceback.print_exc()
        print("fnmesh: the function's init hook failed", file=sys.stderr)
        return EXIT_INIT
    try:
        if options.listen_fd is not None:
            sock = socket.socket(fileno=options.listen_fd)
            sock.setblocking(False)
            server = await serve(app.handle, "", 0, sock=sock)
        else:
            server = await serve(app.handle, options.host, options.port)
    except OSError as error:
        print(f"fnmesh: cannot listen on {options.host}:{options.port}: {error}", file=sys.stderr)
        return EXIT_BIND
    if app.asgi is not None:
        app.asgi.server = (server.host or "localhost", server.port)
    where = f"http://{server.host}:{server.port}" if server.port else f"unix:{server.host}"
    print(f"fnmesh: serving {options.handler} on {where}", flush=True)
    if options.ready_fd is not None:
        _announce(options.ready_fd, server.port)
    await stop.wait()
    await server.close(options.drain_timeout)
    await app.stop()
    return 0


def _announce(fd: int, port: int) -> None:
    try:
        os.write(fd, f"ready {port}\n".encode())
    finally:
        os.close(fd)


def _line_buffered() -> None:
    """So a handler's print() reaches the replica's log at once."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
