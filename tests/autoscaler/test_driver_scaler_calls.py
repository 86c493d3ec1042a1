"""What the autoscaler's driver tells the runtime: the count, with the decision's panic
state and reason, whenever any of them changes -- and nothing when none does."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from fnmesh.autoscaler.driver import Autoscaler
from fnmesh.autoscaler.settings import AutoscalerConfig
from fnmesh.platform.model import Revision
from fnmesh.platform.model.resources import Artifact, ObjectMeta, RevisionSpec

NS, NAME = "default", "hello-00001"


@dataclass(frozen=True)
class Call:
    replicas: int
    panic: bool | None
    reason: str | None


class Runtime:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.ready = 0

    async def scale(
        self,
        revision: Revision,
        replicas: int,
        *,
        panic: bool | None = None,
        reason: str | None = None,
    ) -> None:
        assert revision.name == NAME
        self.calls.append(Call(replicas, panic, reason))

    def ready_count(self, namespace: str, revision: str) -> int:
        return self.ready


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def revision() -> Revision:
    spec = RevisionSpec(function="hello", handler="main:handle", artifact=Artifact("sha256:0"))
    return Revision(metadata=ObjectMeta(name=NAME, namespace=NS), spec=spec)


async def wait_until(what: str, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def decide_now(autoscaler: Autoscaler, runtime: Runtime, expect_call: bool) -> None:
    """Poke, wait until the poke has been decided on, and check whether the runtime heard."""
    before, calls = autoscaler.decision(NS, NAME), len(runtime.calls)
    autoscaler.poke(NS, NAME)
    await wait_until("a new decision", lambda: autoscaler.decision(NS, NAME) is not before)
    await asyncio.sleep(0)  # the runtime is called after the decision is kept
    assert (len(runtime.calls) > calls) == expect_call, runtime.calls[calls:]


async def test_the_runtime_hears_the_reason_and_panic_with_every_change() -> None:
    runtime, clock = Runtime(), Clock()
    config = AutoscalerConfig(tick_interval=60.0, stable_window=6.0, scale_to_zero_grace_period=2)
    autoscaler = Autoscaler(runtime, runtime.ready_count, config, clock=clock)
    autoscaler.start()
    try:
        await autoscaler.track(revision())
        assert runtime.calls == [Call(1, False, "initial-scale")]

        runtime.ready = 1
        autoscaler.record(NS, NAME, "proxy-a", 0.0, 0.0)
        await decide_now(autoscaler, runtime, expect_call=True)
        assert runtime.calls[-1] == Call(1, False, "grace-period")  # same count, new reason

        await decide_now(autoscaler, runtime, expect_call=False)  # nothing changed

        clock.now += 2.5
        autoscaler.record(NS, NAME, "proxy-a", 0.0, 0.0)
        await decide_now(autoscaler, runtime, expect_call=True)
        assert runtime.calls[-1] == Call(0, False, "scale-to-zero")

        runtime.ready = 0
        clock.now += 1.0
        autoscaler.record(NS, NAME, "activator", 700.0, 0.0)  # at zero: 700 / 70 -> 10
        await decide_now(autoscaler, runtime, expect_call=True)
        assert runtime.calls[-1] == Call(10, True, "panic")
        tracked = autoscaler.revisions[(NS, NAME)]
        assert tracked.scale_events == 3  # 1, 0, 10: the reason-only call is no scale event
        decision = autoscaler.decision(NS, NAME)
        assert decision is not None and decision.panic
    finally:
        await autoscaler.close()


async def test_silent_replicas_go_unless_the_activator_holds_requests() -> None:
    runtime, clock = Runtime(), Clock()
    waiting = {"count": 2}
    config = AutoscalerConfig(tick_interval=60.0, stable_window=6.0, scale_to_zero_grace_period=2)
    autoscaler = Autoscaler(
        runtime,
        runtime.ready_count,
        config,
        clock=clock,
        waiting=lambda namespace, name: waiting["count"],
    )
    autoscaler.start()
    try:
        await autoscaler.track(revision())
        runtime.ready = 1
        autoscaler.record(NS, NAME, "proxy-a", 1.0, 1.0)
        await decide_now(autoscaler, runtime, expect_call=True)
        assert runtime.calls[-1].replicas == 1
        clock.now += 7.0  # the reports stop: the window runs dry
        await decide_now(autoscaler, runtime, expect_call=True)
        assert runtime.calls[-1] == Call(1, False, "no-data")  # requests wait: held
        waiting["count"] = 0
        await decide_now(autoscaler, runtime, expect_call=True)
        assert runtime.calls[-1] == Call(0, False, "no-data-timeout")
    finally:
        await autoscaler.close()
