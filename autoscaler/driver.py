"""The autoscaler's driver: collects load reports, decides, tells the runtime.

Every ``tick_interval`` (2 s) it runs ``decide`` for every tracked revision; a poke from
the activator (a request waiting at zero) runs the decision for that revision at once.
Observations are stamped with the driver's own clock when they arrive, so a reporter's
clock never moves the windows.

The runtime is told the replica count with the decision's panic state and reason (the
runtime alone writes a revision's status, and shows them there): whenever the count
changes, and whenever only the panic state or the reason does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fnmesh.autoscaler.decide import KEEP, Decision, ScalerState, decide
from fnmesh.autoscaler.settings import AutoscalerConfig, scaling_spec
from fnmesh.autoscaler.spec import ScalingSpec
from fnmesh.autoscaler.window import MetricWindow, Observation
from fnmesh.platform.model import Revision
from fnmesh.platform.supervise import Supervised, TaskBoard

log = logging.getLogger("fnmesh.autoscaler")
Key = tuple[str, str]


class Scaler(Protocol):
    async def scale(
        self,
        revision: Revision,
        replicas: int,
        *,
        panic: bool | None = None,
        reason: str | None = None,
    ) -> None: ...


class ReadyCount(Protocol):
    def __call__(self, namespace: str, revision: str) -> int: ...


class Waiting(Protocol):
    """Requests the activator holds for a revision."""

    def __call__(self, namespace: str, revision: str) -> int: ...


@dataclass(slots=True)
class Tracked:
    revision: Revision
    spec: ScalingSpec
    window: MetricWindow
    state: ScalerState = field(default_factory=ScalerState)
    last: Decision | None = None
    desired: int | None = None
    scale_events: int = 0
    told: tuple[bool, str] | None = None  # the panic state and reason the runtime was told


class Autoscaler:
    def __init__(
        self,
        scaler: Scaler,
        ready: ReadyCount,
        config: AutoscalerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        waiting: Waiting | None = None,
        tasks: TaskBoard | None = None,
    ) -> None:
        self.scaler = scaler
        self.ready = ready
        self.waiting = waiting
        self.config = config
        self.clock = clock
        self.revisions: dict[Key, Tracked] = {}
        self._pokes: asyncio.Queue[Key] = asyncio.Queue()
        self.tasks = tasks if tasks is not None else TaskBoard()
        self._tasks: list[Supervised] = []
        self._lock = asyncio.Lock()

    # -- what the controller and reporters call ------------------------------------------

    async def track(self, revision: Revision) -> None:
        """Scale ``revision`` from now on (its first decision starts at its initial scale)."""
        key = (revision.namespace, revision.name)
        spec = scaling_spec(revision, self.config)
        current = self.revisions.get(key)
        if current is None:
            self.revisions[key] = Tracked(revision, spec, MetricWindow(spec.stable_window))
            await self._decide(key)
        elif current.spec != spec:
            current.spec = spec
            current.window.resize(spec.stable_window)
            current.revision = revision

    async def untrack(self, namespace: str, name: str) -> None:
        self.revisions.pop((namespace, name), None)

    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None:
        tracked = self.revisions.get((namespace, revision))
        if tracked is not None:
            tracked.window.record(Observation(self.clock(), concurrency, rps, source))

    def poke(self, namespace: str, revision: str) -> None:
        """Demand at a revision with no capacity: decide now, not at the next tick."""
        self._pokes.put_nowait((namespace, revision))

    def decision(self, namespace: str, revision: str) -> Decision | None:
        tracked = self.revisions.get((namespace, revision))
        return tracked.last if tracked else None

    def excess_burst_capacity(self, namespace: str, revision: str) -> float | None:
        """The latest decision's excess burst capacity (the activator's ``BurstCapacity``);
        None before the first decision."""
        tracked = self.revisions.get((namespace, revision))
        last = tracked.last if tracked else None
        return last.excess_burst_capacity if last is not None else None

    def short_of_burst_capacity(self) -> dict[Key, float]:
        """The excess burst capacity of every revision whose excess is negative."""
        return {
            key: tracked.last.excess_burst_capacity
            for key, tracked in self.revisions.items()
            if tracked.last is not None and tracked.last.excess_burst_capacity < 0
        }

    # -- the loop ----------------------------------------------------------------------

    def start(self) -> None:
        ticks = self.tasks.start("autoscaler ticks", self._ticks)
        self._tasks = [ticks, self.tasks.start("autoscaler pokes", self._poked)]

    async def close(self) -> None:
        for task in self._tasks:
            await task.stop()

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            failed = False
            for key in list(self.revisions):
                failed |= not await self._decide_logged(key)
            if not failed and self._tasks:
                self._tasks[0].recovered()

    async def _poked(self) -> None:
        while True:
            key = await self._pokes.get()
            await self._decide_logged(key)

    async def _decide_logged(self, key: Key) -> bool:
        """Decide for one revision; a failure is logged and shown on the task board (the
        next tick decides again)."""
        try:
            await self._decide(key)
        except Exception as error:
            what = f"deciding the scale of {key[0]}/{key[1]}"
            if self._tasks:
                self._tasks[0].failed(error, what)
            log.exception("%s failed", what)
            return False
        return True

    async def _decide(self, key: Key) -> None:
        async with self._lock:
            tracked = self.revisions.get(key)
            if tracked is None:
                return
            ready = self.ready(*key)
            waiting = self.waiting(*key) if self.waiting is not None else 0
            decided = decide(
                tracked.spec, tracked.state, tracked.window, ready, self.clock(), waiting=waiting
            )
            tracked.state = decided.state
            tracked.last = decided
            if decided.desired_replicas != KEEP:
                wanted = decided.desired_replicas
            elif tracked.desired is not None:
                wanted = tracked.desired
            else:
                wanted = max(ready, tracked.spec.bounded(tracked.spec.initial_scale))
            told = (decided.panic, str(decided.reason))
            if wanted == tracked.desired and told == tracked.told:
                return
            if wanted != tracked.desired:
                log.info(
                    "%s/%s: %s -> %d replicas (%s)",
                    key[0],
                    key[1],
                    tracked.desired,
                    wanted,
                    decided.reason,
                )
                tracked.scale_events += 1
            tracked.desired, tracked.told = wanted, told
            await self.scaler.scale(tracked.revision, wanted, panic=told[0], reason=told[1])
