"""Shutting the inbound side down without dropping requests, in fixed steps.

1. mark the replica draining: ``/_fnmesh/health`` and the admin ``/ready`` answer 503, so
   the platform's probes take the replica out of rotation;
2. stop accepting connections and abandon TLS handshakes still under way;
3. close idle keep-alive connections and let requests in flight -- queued ones included --
   finish, each answered with ``connection: close``, for at most ``timeout`` seconds;
4. cancel what is left (``HttpServer.close`` does 2-4 for the HTTP side).

What comes after (the last stats report, closing the pool) is the entry point's.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("fnmesh.mesh.inbound")


class Closable(Protocol):
    @property
    def in_flight(self) -> int: ...

    async def close(self, drain_timeout: float = 10.0) -> None: ...


class Handshakes(Protocol):
    def cancel_handshakes(self) -> None: ...


class Drain:
    def __init__(self) -> None:
        self.draining = False

    async def run(self, server: Closable, handshakes: Handshakes | None, timeout: float) -> None:
        """Drain ``server`` in the steps of the module docstring."""
        self.draining = True  # 1
        log.info("draining: %d request(s) in flight, waiting up to %gs", server.in_flight, timeout)
        if handshakes is not None:  # 2 (the server stops accepting in close())
            handshakes.cancel_handshakes()
        await server.close(timeout)  # 2, 3, 4
