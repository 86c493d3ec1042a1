"""When a deploy's revision counts as served or failed; the wait on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from fnmesh.platform.git.readiness import Failed, RevisionFailed, Served, readiness, wait_ready
from fnmesh.platform.model import Condition, Function, FunctionSpec, FunctionStatus, ObjectMeta


def function(generation: int, **status: Any) -> Function:
    return Function(
        ObjectMeta("hello", generation=generation),
        FunctionSpec(handler="main:handle"),
        FunctionStatus(**status),
    )


FAILED = Condition("Ready", "False", "RevisionFailed", "revision hello-00003 failed: boom")


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (function(3, observed_generation=2, latest_created_revision="hello-00002"), None),
        (
            function(
                3,
                observed_generation=3,
                latest_created_revision="hello-00003",
                latest_ready_revision="hello-00002",
            ),
            None,
        ),
        (
            function(
                3,
                observed_generation=3,
                latest_created_revision="hello-00003",
                latest_ready_revision="hello-00003",
                url="http://gw/fn/hello/",
            ),
            Served("hello-00003", "http://gw/fn/hello/"),
        ),
        (
            function(
                3,
                observed_generation=3,
                latest_created_revision="hello-00003",
                latest_ready_revision="hello-00002",
                conditions=[FAILED],
            ),
            Failed("hello-00003", "revision hello-00003 failed: boom"),
        ),
        (
            # an older failure does not count before the controller has seen generation 3
            function(
                3,
                observed_generation=2,
                latest_created_revision="hello-00002",
                conditions=[FAILED],
            ),
            None,
        ),
    ],
)
def test_readiness(fn: Function, expected: Served | Failed | None) -> None:
    assert readiness(fn, 3) == expected


class Timeline:
    """A store whose function changes as fake time passes."""

    def __init__(self, steps: list[tuple[float, Function]]) -> None:
        self.steps = steps
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        current = [fn for at, fn in self.steps if at <= self.now][-1]
        return current.to_dict()


async def test_waiting_ends_when_the_revision_is_ready() -> None:
    ready = function(
        2,
        observed_generation=2,
        latest_created_revision="hello-00002",
        latest_ready_revision="hello-00002",
        url="u",
    )
    timeline = Timeline([(0.0, function(2, observed_generation=1)), (5.0, ready)])
    served = await wait_ready(
        timeline, "default", "hello", 2, timeout=10, clock=timeline.clock, sleep=timeline.sleep
    )
    assert served == Served("hello-00002", "u")
    assert 5.0 <= timeline.now < 5.2


async def test_waiting_fails_with_the_revision_or_at_the_deadline() -> None:
    failing = function(
        2, observed_generation=2, latest_created_revision="hello-00002", conditions=[FAILED]
    )
    timeline = Timeline([(0.0, function(2, observed_generation=1)), (1.0, failing)])
    with pytest.raises(RevisionFailed) as caught:
        await wait_ready(
            timeline, "default", "hello", 2, timeout=10, clock=timeline.clock, sleep=timeline.sleep
        )
    assert caught.value.revision == "hello-00002"
    stuck = Timeline([(0.0, function(2, observed_generation=1))])
    with pytest.raises(TimeoutError, match="within 10s"):
        await wait_ready(
            stuck, "default", "hello", 2, timeout=10, clock=stuck.clock, sleep=stuck.sleep
        )
    assert 10.0 <= stuck.now < 10.1
