"""Requests for revisions without ready capacity wait here, then go on.

``Activator`` is the ``Admission`` of ``fnmesh.platform.admission``. ``through`` makes
the burst-capacity choice (``burst.through_activator``) from the autoscaler's excess
burst capacity (``BurstCapacity``: in process on one machine, a snapshot polled from the
autoscaler on a cluster). ``admit`` holds a request: it takes a capacity slot at once
when there is one, waits in the revision's FIFO queue otherwise, and is refused
(``Refused``) with a reason when the queue is full (503) or when no capacity came within
the activation deadline (504). A request arriving at zero is reported to the autoscaler
and pokes it at once, so scale-from-zero does not wait for the next tick. Every second
the activator reports how many requests it holds per revision (its own demand; requests
it has let through are reported by the replicas' proxies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from fnmesh.activator.burst import through_activator
from fnmesh.activator.settings import ActivatorConfig
from fnmesh.activator.throttle import QueueFull, Throttle
from fnmesh.platform.admission import Refused
from fnmesh.platform.supervise import Supervised, TaskBoard

log = logging.getLogger("fnmesh.activator")
SOURCE = "activator"


class Capacity(Protocol):
    """Where ready replicas are known (the gateway's route table)."""

    def ready_replicas(self, namespace: str, function: str, revision: str) -> int: ...


class Demand(Protocol):
    """The autoscaler, as the activator sees it."""

    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None: ...

    def poke(self, namespace: str, revision: str) -> None: ...


class BurstCapacity(Protocol):
    """The autoscaler's latest excess burst capacity of a revision (None: no decision)."""

    def excess_burst_capacity(self, namespace: str, revision: str) -> float | None: ...


class NoBurst:
    """No burst data: only revisions without a ready replica go through the activator."""

    def excess_burst_capacity(self, namespace: str, revision: str) -> float | None:
        return None


@dataclass(slots=True)
class _Revision:
    namespace: str
    function: str
    revision: str
    throttle: Throttle
    arrivals: int = 0
    zero_arrivals: int = 0  # arrivals while there was no replica: nobody else counts them
    area: float = 0.0  # integral of waiting requests over time since the last report
    since: float = 0.0
    last_change: float = 0.0


class Activator:
    def __init__(
        self,
        capacity: Capacity,
        demand: Demand,
        config: ActivatorConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        tasks: TaskBoard | None = None,
        burst: BurstCapacity | None = None,
    ) -> None:
        self.capacity = capacity
        self.burst: BurstCapacity = burst if burst is not None else NoBurst()
        self.tasks = tasks if tasks is not None else TaskBoard()
        self.demand = demand
        self.config = config
        self.clock = clock
        self._revisions: dict[tuple[str, str], _Revision] = {}
        self._task: Supervised | None = None

    def through(self, namespace: str, revision: str, ready: int) -> bool:
        """The burst-capacity choice for one request (``Admission.through``)."""
        return through_activator(ready, self.burst.excess_burst_capacity(namespace, revision))

    @contextlib.asynccontextmanager
    async def admit(
        self, namespace: str, function: str, revision: str, concurrency: int
    ) -> AsyncIterator[None]:
        state = self._state(namespace, function, revision, concurrency)
        throttle = state.throttle
        state.arrivals += 1
        at_zero = throttle.capacity == 0
        state.zero_arrivals += at_zero
        self._account(state)
        acquire = asyncio.ensure_future(throttle.acquire())
        if not acquire.done():
            self._account(state)
        if at_zero:
            self.demand.record(namespace, revision, SOURCE, float(max(1, throttle.waiting)), 0.0)
            self.demand.poke(namespace, revision)
        try:
            await asyncio.wait_for(asyncio.shield(acquire), self.config.activation_deadline)
        except QueueFull:
            raise Refused(
                503,
                f"revision {revision} has {throttle.waiting} requests waiting "
                "for capacity, the most it holds: try again shortly",
            ) from None
        except TimeoutError:
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError, QueueFull):
                await acquire
            raise Refused(
                504,
                f"revision {revision} had no ready replica within "
                f"{self.config.activation_deadline:g}s (activation deadline)",
            ) from None
        except asyncio.CancelledError:
            acquire.cancel()
            raise
        finally:
            self._account(state)
        try:
            yield
        finally:
            throttle.release()

    def refresh(self, namespace: str, function: str) -> None:
        """Ready replicas changed for ``function``: resize its throttles, wake waiters."""
        for state in self._revisions.values():
            if state.namespace == namespace and state.function == function:
                self._account(state)
                ready = self.capacity.ready_replicas(namespace, function, state.revision)
                state.throttle.resize(ready, state.throttle.concurrency)
                self._account(state)

    def held(self, namespace: str, revision: str) -> int:
        state = self._revisions.get((namespace, revision))
        return state.throttle.waiting if state else 0

    def _state(self, namespace: str, function: str, revision: str, concurrency: int) -> _Revision:
        key = (namespace, revision)
        state = self._revisions.get(key)
        if state is None:
            throttle = Throttle(self.config.queue_depth)
            throttle.resize(
                self.capacity.ready_replicas(namespace, function, revision), concurrency
            )
            now = self.clock()
            state = self._revisions[key] = _Revision(
                namespace, function, revision, throttle, since=now, last_change=now
            )
        elif state.throttle.concurrency != concurrency:
            state.throttle.resize(state.throttle.replicas, concurrency)
        return state

    def _account(self, state: _Revision) -> None:
        now = self.clock()
        state.area += state.throttle.waiting * (now - state.last_change)
        state.last_change = now

    # -- per-second reports ------------------------------------------------------------

    def start(self) -> None:
        self._task = self.tasks.start("activator reports", self._report_loop)

    async def close(self) -> None:
        if self._task is not None:
            await self._task.stop()

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.report_interval)
            self.report()

    def report(self) -> None:
        now = self.clock()
        for key, state in list(self._revisions.items()):
            self._account(state)
            span = max(now - state.since, 1e-9)
            waiting = state.area / span
            if waiting > 0 or state.arrivals:
                self.demand.record(
                    state.namespace, state.revision, SOURCE, waiting, state.zero_arrivals / span
                )
            idle = not state.throttle.waiting and not state.throttle.in_flight
            if idle and not state.arrivals:
                del self._revisions[key]
                continue
            state.area, state.arrivals, state.zero_arrivals, state.since = 0.0, 0, 0, now
