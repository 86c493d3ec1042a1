"""The egress listener: a Unix socket only the replica's runtime can reach (mode 0600,
owned by the runtime's uid when it runs sandboxed, and visible only in its sandbox)."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl

from fnmesh.platform.http import HttpServer, serve
from fnmesh.platform.mesh.egress.config import EgressConfig
from fnmesh.platform.mesh.egress.destinations import DestinationClient
from fnmesh.platform.mesh.egress.listener import EgressHandler
from fnmesh.platform.mesh.metrics.exposition import Registry
from fnmesh.platform.mesh.outbound import Outbound


class Egress:
    def __init__(self, config: EgressConfig, namespace: str, context: ssl.SSLContext) -> None:
        self.config = config
        self.destinations = DestinationClient(
            config.destinations_url, context=context, server_identity=config.server_identity
        )
        # Its own registry: the proxy's /metrics shows the inbound families only.
        self.outbound = Outbound(tls=context, registry=Registry())
        self.handler = EgressHandler(self.destinations, self.outbound, namespace=namespace)
        self.server: HttpServer | None = None

    async def start(self) -> None:
        path = self.config.socket
        assert path is not None
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        if self.config.owner >= 0:
            os.chown(path, self.config.owner, self.config.owner)
        sock.listen(128)
        sock.setblocking(False)
        self.server = await serve(self.handler, "", 0, sock=sock)

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close(1.0)
        await self.outbound.close()
        await self.destinations.close()
        if self.config.socket is not None:
            with contextlib.suppress(FileNotFoundError):
                self.config.socket.unlink()
