"""Running a component as a process: logging, the event loop, SIGTERM as a stop event.

Exit status of every component: 0 after a graceful stop, 1 when it cannot start (a port,
the cluster, the identity endpoint), 2 for a bad environment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

EXIT_OK, EXIT_START, EXIT_CONFIG = 0, 1, 2

Main = Callable[[asyncio.Event], Awaitable[int]]


def run(main: Main) -> int:
    """Run ``main(stop)`` until it returns; SIGTERM and SIGINT set ``stop``."""
    logging.basicConfig(
        level=os.environ.get("FNMESH_LOG_LEVEL", "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await main(stop)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(serve())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve())


def refuse(component: str, error: object, code: int = EXIT_CONFIG) -> int:
    """Say why ``component`` cannot run, on stderr; the exit status."""
    print(f"fnmesh {component}: {error}", file=sys.stderr, flush=True)
    return code


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening, non-blocking socket; OSError names the address on failure."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock
