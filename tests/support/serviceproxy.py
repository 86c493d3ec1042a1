"""kube-proxy for the process kubelet: a Service's address forwards to its ready pods.

Each Service gets a loopback address of its own (its "cluster IP"); a ``Forwarder``
listens on that address at each of the Service's ports and passes every connection's
bytes, untouched (mTLS goes end to end), to one of the ready pods' target ports, in
turn. With no ready pod a connection is closed at once, as a Service without endpoints
refuses. The forwarding is two asyncio Protocols writing into each other's transports
(no streams): every byte of the data path passes through the test's process.
``hosts_text`` writes the names the cluster's DNS would answer (``<svc>.<ns>.svc``) in
the hosts-file form ``FNMESH_SERVICE_HOSTS`` reads.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import cast


class Forwarder:
    """One Service port: ``address:port`` -> the current targets, round robin."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.targets: list[tuple[str, int]] = []
        self._turn = itertools.count()
        self._server: asyncio.AbstractServer | None = None
        self._open: set[Splice] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Splice(self), self.address, self.port, reuse_address=True
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for splice in list(self._open):
            splice.abort()

    def pick(self) -> tuple[str, int] | None:
        targets = self.targets
        return targets[next(self._turn) % len(targets)] if targets else None


class Splice(asyncio.Protocol):
    """The client's side of one connection; ``Upstream`` is the pod's. Bytes pass as they
    come; either side pausing its writes pauses the other's reads (backpressure)."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.transport: asyncio.Transport | None = None
        self.upstream: Upstream | None = None
        self.early: list[bytes] = []
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        target = self.forwarder.pick()
        if target is None:  # a Service without ready endpoints refuses
            self.transport.abort()
            return
        self.forwarder._open.add(self)
        self.transport.pause_reading()
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_connection(lambda: Upstream(self), *target))
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[tuple[asyncio.BaseTransport, Upstream]]) -> None:
        assert self.transport is not None
        if task.cancelled() or task.exception() is not None:
            self.transport.abort()
            return
        _, self.upstream = task.result()
        if self.transport.is_closing():
            self.upstream.abort()
            return
        upstream = self.upstream.transport
        assert upstream is not None
        for data in self.early:  # what came before the pod answered
            upstream.write(data)
        self.early.clear()
        if self.eof and upstream.can_write_eof():
            upstream.write_eof()
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        upstream = self.upstream.transport if self.upstream is not None else None
        if upstream is None:
            self.early.append(data)  # reading is paused, but a first chunk may be on its way
        else:
            upstream.write(data)

    def eof_received(self) -> bool:
        upstream = self.upstream.transport if self.upstream is not None else None
        if upstream is None:
            self.eof = True
        elif upstream.can_write_eof():
            upstream.write_eof()
        return True  # keep our side open for the answer

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.forwarder._open.discard(self)
        if self.upstream is not None:
            self.upstream.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Upstream(asyncio.Protocol):
    def __init__(self, client: Splice) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.client.transport is not None:
            self.client.transport.write(data)

    def eof_received(self) -> bool:
        if self.client.transport is not None and self.client.transport.can_write_eof():
            self.client.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client.transport is None:
            return
        if exc is None:
            self.client.transport.close()
        else:
            self.client.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


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
