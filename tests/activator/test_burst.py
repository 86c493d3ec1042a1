"""The burst-capacity choice: when a request goes through the activator (a table)."""

from __future__ import annotations

import pytest

from fnmesh.activator import Activator, ActivatorConfig, through_activator


@pytest.mark.parametrize(
    ("ready", "excess", "through"),
    [
        (0, None, True),  # scaled to zero: always held, and the autoscaler is poked
        (0, 50.0, True),  # a stale decision never sends a request to no replica
        (0, -10.0, True),
        (1, None, False),  # no decision yet: straight to the replicas
        (1, 0.0, False),  # exactly the target burst capacity spare
        (1, 0.5, False),
        (3, -0.5, True),  # short of the target: the activator queues the burst
        (3, -200.0, True),
        (5, 200.0, False),
    ],
)
def test_through_activator(ready: int, excess: float | None, through: bool) -> None:
    assert through_activator(ready, excess) is through


class Routes:
    def ready_replicas(self, namespace: str, function: str, revision: str) -> int:
        return 1


class Demand:
    def record(self, *args: object) -> None: ...

    def poke(self, namespace: str, revision: str) -> None: ...


class Burst:
    def __init__(self, values: dict[tuple[str, str], float]) -> None:
        self.values = values

    def excess_burst_capacity(self, namespace: str, revision: str) -> float | None:
        return self.values.get((namespace, revision))


def test_the_activator_chooses_from_its_burst_source() -> None:
    burst = Burst({("default", "short-00001"): -3.0, ("default", "spare-00001"): 4.0})
    activator = Activator(Routes(), Demand(), ActivatorConfig(), burst=burst)
    assert activator.through("default", "short-00001", 2)
    assert not activator.through("default", "spare-00001", 2)
    assert not activator.through("default", "unknown-00001", 2)
    assert activator.through("default", "spare-00001", 0)
    without = Activator(Routes(), Demand(), ActivatorConfig())
    assert not without.through("default", "short-00001", 2)
