"""``ReplicaProxy``: the parts of one replica proxy, made and started together.

It builds the metrics, the shared concurrency state, the tap recorder, the policy watcher
and the inbound stack (``stack``), listens for mTLS traffic and serves the admin endpoint,
runs the stats reporter, and stops in the fixed steps of ``inbound.drain`` followed by a
last stats report. Tests run it in process; ``main`` runs it as the proxy process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from typing import Protocol

from fnmesh.platform.http import (
    ConnectionPool,
    HttpServer,
    Request,
    ServerLimits,
    UpstreamError,
    serve,
)
from fnmesh.platform.mesh.egress.server import Egress
from fnmesh.platform.mesh.inbound.concurrency import ConcurrencyState
from fnmesh.platform.mesh.inbound.drain import Drain
from fnmesh.platform.mesh.inbound.forward import Forward
from fnmesh.platform.mesh.inbound.tls import TlsListener, serve_mtls
from fnmesh.platform.mesh.metrics.exposition import Registry
from fnmesh.platform.mesh.metrics.process import ProcessMetrics
from fnmesh.platform.mesh.metrics.proxy import ProxyMetrics
from fnmesh.platform.mesh.metrics.responses import ResponseMetrics
from fnmesh.platform.mesh.policy.watch import PolicyFile
from fnmesh.platform.mesh.proxy.admin import AdminEndpoint
from fnmesh.platform.mesh.proxy.config import ProxyConfig
from fnmesh.platform.mesh.proxy.stack import InboundParts, inbound_stack
from fnmesh.platform.mesh.stats.load import ConcurrencyIntegral
from fnmesh.platform.mesh.stats.report import ReportLabels
from fnmesh.platform.mesh.stats.reporter import StatsReporter, StatsTarget
from fnmesh.platform.mesh.tap.recorder import TapRecorder

READY_PROBE_TIMEOUT = 1.0


class IdentitySource(Protocol):
    """What the proxy needs of its identity: the name, the contexts, the expiry."""

    identity: str

    @property
    def expiration_timestamp(self) -> float | None: ...

    def server_context(self) -> ssl.SSLContext: ...

    def client_context(self) -> ssl.SSLContext: ...


class ReplicaProxy:
    """The running proxy: inbound mTLS listener, admin endpoint and stats reporter."""

    def __init__(
        self,
        config: ProxyConfig,
        identity: IdentitySource,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        # Latencies are measured on the monotonic clock, not the loop's: uvloop's loop.time()
        # counts whole milliseconds, which would put every sub-millisecond request at 0 or 1.
        clock = time.monotonic
        self.config = config
        self.identity = identity
        self.pool = ConnectionPool()
        self.drain = Drain()
        labels = config.labels.metric_labels()
        self.responses = ResponseMetrics(
            direction="inbound", peer_label="client_id", tls=True, labels=labels
        )
        self.metrics = ProxyMetrics(labels)
        self.metrics.cert_expiration = lambda: identity.expiration_timestamp
        self.registry = Registry()
        self.registry.register(self.responses)
        self.registry.register(self.metrics)
        self.registry.register(ProcessMetrics())
        self.load = ConcurrencyIntegral(clock())
        limits = config.limits
        self.concurrency = ConcurrencyState(
            limits.concurrency, limits.queue_depth, self.load, clock
        )
        self.tap = TapRecorder(rate=config.tap.rate, capacity=config.tap.buffer)
        self.policies = PolicyFile(config.policy.file, config.policy.public_callers)
        upstream = config.upstream
        self.forward = Forward(
            self.pool, upstream.host, upstream.port, timeout=limits.request_timeout
        )
        self.handler = inbound_stack(
            InboundParts(
                forward=self.forward,
                drain=self.drain,
                responses=self.responses,
                tap=self.tap,
                policies=self.policies,
                denials=self.metrics,
                concurrency=self.concurrency,
                request_timeout=limits.request_timeout,
                identity=identity.identity,
                revision=config.labels.revision,
                clock=clock,
                wall_clock=wall_clock,
            )
        )
        self.reporter: StatsReporter | None = None
        if config.stats.url:
            self.reporter = StatsReporter(
                target=StatsTarget.parse(config.stats.url),
                server_identity=config.stats.server_identity,
                ssl_context=identity.client_context(),
                pool=self.pool,
                labels=ReportLabels(
                    config.labels.namespace,
                    config.labels.function,
                    config.labels.revision,
                    config.labels.replica,
                ),
                load=self.load,
                responses=self.responses,
                tap=self.tap,
                clock=clock,
                wall_clock=wall_clock,
                interval=config.stats.interval,
            )
        self.wall_clock = wall_clock
        self.egress: Egress | None = None
        if config.egress is not None:
            self.egress = Egress(config.egress, config.labels.namespace, identity.client_context())
        self.inbound: HttpServer | None = None
        self.listener: TlsListener | None = None
        self.admin: HttpServer | None = None
        self._reporting: asyncio.Task[None] | None = None

    @property
    def inbound_port(self) -> int:
        assert self.inbound is not None
        return self.inbound.port

    @property
    def admin_port(self) -> int:
        assert self.admin is not None
        return self.admin.port

    async def start(self) -> None:
        """Listen (inbound mTLS, admin) and start reporting; OSError if a port is taken."""
        config = self.config
        self.policies.refresh()
        self.inbound, self.listener = await serve_mtls(
            self.handler,
            config.listen.inbound.host,
            config.listen.inbound.port,
            context=self.identity.server_context(),
            counter=self.metrics,
            limits=ServerLimits(max_body_bytes=config.limits.max_body_bytes),
        )
        inbound, listener = self.inbound, self.listener
        self.metrics.open_connections = lambda: inbound.connections + listener.handshaking
        admin = AdminEndpoint(self.registry, self.readiness)
        try:
            self.admin = await serve(admin, config.listen.admin.host, config.listen.admin.port)
        except OSError:
            await self.inbound.close(0)
            raise
        if self.egress is not None:
            await self.egress.start()
        if self.reporter is not None:
            self._reporting = asyncio.create_task(self.reporter.run())

    async def readiness(self) -> str | None:
        """Why the proxy should not get traffic now, or None."""
        if self.drain.draining:
            return "the replica is shutting down"
        expires = self.identity.expiration_timestamp
        if expires is None:
            return "no certificate yet"
        if expires <= self.wall_clock():
            return "the certificate has expired"
        upstream = self.config.upstream
        probe = Request("GET", b"/_fnmesh/health", [])
        try:
            await self.pool.request(
                upstream.host, upstream.port, probe, timeout=READY_PROBE_TIMEOUT
            )
        except UpstreamError as error:
            return f"the function runtime at {upstream} does not answer: {error}"
        return None

    async def stop(self) -> None:
        """Drain and stop, in the steps of the module docstring."""
        if self.inbound is not None:
            await self.drain.run(self.inbound, self.listener, self.config.limits.drain_timeout)
        if self._reporting is not None:
            self._reporting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporting
        if self.reporter is not None:
            await self.reporter.report()
        if self.admin is not None:
            await self.admin.close(1.0)
        if self.egress is not None:
            await self.egress.close()
        await self.pool.close()


def vars_of(labels: object) -> dict[str, str]:
    return {
        name: getattr(labels, name) for name in ("namespace", "function", "revision", "replica")
    }
