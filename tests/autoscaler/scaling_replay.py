"""Replays a load timeline against `decide` on a fake clock.

Every second each ready replica reports its share of the revision's load (or, at zero
replicas, the activator reports the load it holds); every `tick_interval` seconds the
autoscaler decides and the replicas follow the decision at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fnmesh.autoscaler import (
    KEEP,
    Decision,
    MetricWindow,
    Observation,
    ScalerState,
    ScalingSpec,
    decide,
)

Load = float | Callable[[float], float]


@dataclass(frozen=True)
class Tick:
    time: float
    ready: int  # ready replicas the decision saw
    decision: Decision

    @property
    def desired(self) -> int:
        return self.decision.desired_replicas


@dataclass
class Replay:
    spec: ScalingSpec
    ready: int = 0
    now: float = 1000.0
    state: ScalerState = field(default_factory=ScalerState)
    ticks: list[Tick] = field(default_factory=list)
    silent: bool = False  # the replicas' reports stop arriving (a broken reporter)
    waiting: int = 0  # requests the activator holds

    def __post_init__(self) -> None:
        self.window = MetricWindow(self.spec.stable_window)
        self._elapsed = 0

    def run(self, seconds: int, concurrency: Load = 0.0, rps: Load = 0.0) -> list[Tick]:
        """Advance `seconds` seconds under the given load; return the decisions taken."""
        taken: list[Tick] = []
        for _ in range(seconds):
            self._report(_at(concurrency, self.now), _at(rps, self.now))
            if self._elapsed % self.spec.tick_interval == 0:
                taken.append(self._decide())
            self.now += 1.0
            self._elapsed += 1
        self.ticks.extend(taken)
        return taken

    def _report(self, concurrency: float, rps: float) -> None:
        if self.silent:
            return
        if self.ready > 0:
            share = (concurrency / self.ready, rps / self.ready)
            for replica in range(self.ready):
                self.window.record(Observation(self.now, *share, source=f"replica-{replica}"))
        elif concurrency > 0 or rps > 0:
            self.window.record(Observation(self.now, concurrency, rps, source="activator"))

    def _decide(self) -> Tick:
        decision = decide(
            self.spec, self.state, self.window, self.ready, self.now, waiting=self.waiting
        )
        tick = Tick(self.now, self.ready, decision)
        self.state = decision.state
        if decision.desired_replicas != KEEP:
            self.ready = decision.desired_replicas
        return tick


def _at(load: Load, now: float) -> float:
    return load(now) if callable(load) else load


def first(ticks: list[Tick], check: Callable[[Tick], bool]) -> Tick:
    """The first tick matching `check` (fails the test when there is none)."""
    for tick in ticks:
        if check(tick):
            return tick
    raise AssertionError("no decision matched")
