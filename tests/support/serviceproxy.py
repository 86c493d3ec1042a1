"""kube-proxy for the process kubelet: a Service's address forwards to its ready pods.

Each Service gets a loopback address of its own (its "cluster IP"); a ``Forwarder``
listens on that address at each of the Service's ports and passes every connection's
bytes, untouched (mTLS goes end to end), to one of the ready pods' target ports, in
turn. With no ready pod a connection is closed at once, as a Service without endpoints
refuses. ``hosts_text`` writes the names the cluster's DNS would answer
(``<svc>.<ns>.svc``) in the hosts-file form ``FNMESH_SERVICE_HOSTS`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Mapping
from pathlib import Path

CHUNK = 64 * 1024


class Forwarder:
    """One Service port: ``address:port`` -> the current targets, round robin."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.targets: list[tuple[str, int]] = []
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.address, self.port, reuse_address=True
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if not self.targets:
                return
            host, port = self.targets[next(self._turn) % len(self.targets)]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            except OSError:
                return
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
        finally:
            writer.close()
            self._connections.discard(task)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


def hosts_text(addresses: Mapping[tuple[str, str], str]) -> str:
    """``/etc/hosts`` lines for (namespace, service) -> address."""
    lines = [
        f"{address} {name}.{namespace}.svc {name}.{namespace}.svc.cluster.local"
        for (namespace, name), address in sorted(addresses.items())
    ]
    return "".join(line + "\n" for line in lines)


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    os.replace(partial, path)
