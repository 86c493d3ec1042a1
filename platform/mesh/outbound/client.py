"""``Outbound``: the client side of the mesh, one stack for every destination.

``stack`` is the one place the layers are put in order; read it top to bottom as the
way a request goes out. Per-destination state (endpoint loads, circuits, the retry
budget, metric children) is kept here by destination name and follows the
destination's current endpoints and settings.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from ssl import SSLContext

from fnmesh.platform.http import ConnectionPool, Request, Response
from fnmesh.platform.mesh.metrics.exposition import MetricsRegistry
from fnmesh.platform.mesh.outbound.layers import (
    Balance,
    Call,
    Clock,
    DestinationState,
    Forward,
    Measure,
    Respond,
    Retry,
    Service,
    TotalTimeout,
    TryTimeout,
)
from fnmesh.platform.mesh.outbound.metrics import OutboundMetrics
from fnmesh.platform.mesh.outbound.target import Destination

_IDLE_STATE = 600.0  # seconds after which an unused destination's state is dropped
_SWEEP_ABOVE = 64  # destinations kept before idle ones are looked for


def stack(pool: ConnectionPool, tls: SSLContext | None, clock: Clock) -> Service:
    """The outbound layers: a request goes down this list, its response comes back up."""
    layers: list[Callable[[Service], Service]] = [
        # metrics: request_total, response_total, response_latency_ms of the final response
        lambda inner: Measure(inner, clock),
        # failures become responses with a reason: 503 no endpoint, 504 timeout, 502 other
        Respond,
        # the total timeout: one deadline for all tries
        TotalTimeout,
        # retry what is safe to retry, on another endpoint, within the retry budget
        lambda inner: Retry(inner, clock),
        # choose the endpoint: P2C over peak EWMA, ejected ones skipped (failure accrual)
        lambda inner: Balance(inner, clock),
        # the try's timeout: the per-try timeout within what is left of the total
        lambda inner: TryTimeout(inner, clock),
    ]
    # at the bottom: the try goes over a pooled keep-alive connection, mTLS checking that
    # the server is the endpoint's identity
    service: Service = Forward(pool, tls)
    for layer in reversed(layers):
        service = layer(service)
    return service


class Outbound:
    """Sends requests to destinations through the stack; never raises for upstream trouble.

    ``tls``: the client context (from ``IdentityClient.client_context()``); every endpoint
    must then have an identity, which the server's certificate must name. None sends
    plaintext (during the transition to mTLS everywhere).
    """

    def __init__(
        self,
        *,
        tls: SSLContext | None,
        registry: MetricsRegistry,
        pool: ConnectionPool | None = None,
        clock: Clock = time.monotonic,
        roll: Callable[[], float] = random.random,
    ) -> None:
        self.tls = tls
        self.pool = pool if pool is not None else ConnectionPool()
        self._own_pool = pool is None
        self._clock = clock
        self._roll = roll
        self._metrics = OutboundMetrics(registry, tls=tls is not None)
        self._states: dict[str, DestinationState] = {}
        self._service = stack(self.pool, tls, clock)

    async def request(self, destination: Destination, request: Request) -> Response:
        """The destination's response, or a 502/503/504 JSON error saying why not."""
        now = self._clock()
        return await self._service(Call(destination, request, self.state(destination, now), now))

    def state(self, destination: Destination, now: float) -> DestinationState:
        """The destination's state, made on first use and kept in step with it."""
        state = self._states.get(destination.name)
        if state is None:
            if len(self._states) >= _SWEEP_ABOVE:
                self._sweep(now)
            metrics = self._metrics.for_destination(
                destination.namespace, destination.function, destination.revision
            )
            state = self._states[destination.name] = DestinationState(
                destination, metrics, self._roll, now
            )
        else:
            state.follow(destination, now)
        return state

    async def close(self) -> None:
        if self._own_pool:
            await self.pool.close()

    def _sweep(self, now: float) -> None:
        for name in [n for n, s in self._states.items() if now - s.used > _IDLE_STATE]:
            del self._states[name]
