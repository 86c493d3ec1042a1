import asyncio

import pytest

from fnmesh.activator import Activator, ActivatorConfig, Refused
from fnmesh.activator.throttle import QueueFull, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Capacity:
    def __init__(self) -> None:
        self.ready: dict[str, int] = {}

    def ready_replicas(self, namespace: str, function: str, revision: str) -> int:
        return self.ready.get(revision, 0)


class Demand:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, float, float]] = []
        self.pokes: list[str] = []

    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None:
        self.records.append((revision, source, concurrency, rps))

    def poke(self, namespace: str, revision: str) -> None:
        self.pokes.append(revision)


async def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async def loop() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(loop(), timeout)


async def test_throttle_grants_in_fifo_order_and_refuses_when_full() -> None:
    throttle = Throttle(queue_depth=2)
    throttle.resize(replicas=1, concurrency=1)
    await throttle.acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        await throttle.acquire()
        order.append(i)

    first, second = asyncio.create_task(take(1)), asyncio.create_task(take(2))
    await wait_until(lambda: throttle.waiting == 2)
    with pytest.raises(QueueFull):
        await throttle.acquire()
    throttle.release()
    await wait_until(lambda: order == [1])
    throttle.release()
    await asyncio.gather(first, second)
    assert order == [1, 2]
    assert throttle.in_flight == 1


async def test_no_replicas_means_no_capacity_even_when_unlimited() -> None:
    throttle = Throttle(queue_depth=10)
    throttle.resize(replicas=0, concurrency=0)
    waiter = asyncio.create_task(throttle.acquire())
    await wait_until(lambda: throttle.waiting == 1)
    throttle.resize(replicas=1, concurrency=0)
    await asyncio.wait_for(waiter, 1)
    assert throttle.in_flight == 1


async def test_a_request_at_zero_pokes_and_waits_for_a_replica() -> None:
    capacity, demand, clock = Capacity(), Demand(), FakeClock()
    activator = Activator(capacity, demand, ActivatorConfig(), clock=clock)
    admitted = asyncio.Event()

    async def request() -> None:
        async with activator.admit("default", "hello", "hello-00001", 0):
            admitted.set()

    task = asyncio.create_task(request())
    await wait_until(lambda: demand.pokes == ["hello-00001"])
    assert demand.records and demand.records[0][2] >= 1  # demand is seen before the poke
    assert not admitted.is_set()
    capacity.ready["hello-00001"] = 1
    activator.refresh("default", "hello")
    await asyncio.wait_for(task, 1)
    assert admitted.is_set()


async def test_never_more_than_the_replicas_concurrency_at_once() -> None:
    capacity, demand = Capacity(), Demand()
    capacity.ready["r"] = 2
    activator = Activator(capacity, demand, ActivatorConfig())
    inside = peak = 0
    gate = asyncio.Event()

    async def request() -> None:
        nonlocal inside, peak
        async with activator.admit("default", "f", "r", 3):
            inside += 1
            peak = max(peak, inside)
            await gate.wait()
            inside -= 1

    tasks = [asyncio.create_task(request()) for _ in range(10)]
    await wait_until(lambda: inside == 6)
    assert activator.held("default", "r") == 4
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 6


async def test_the_queue_limit_and_the_deadline_refuse_with_reasons() -> None:
    capacity, demand = Capacity(), Demand()
    config = ActivatorConfig(queue_depth=1, activation_deadline=0.05)
    activator = Activator(capacity, demand, config)
    waiting = asyncio.create_task(_enter(activator))
    await wait_until(lambda: activator.held("default", "r") == 1)
    with pytest.raises(Refused) as full:
        await _enter(activator)
    assert full.value.status == 503 and "waiting" in full.value.reason
    with pytest.raises(Refused) as late:
        await waiting
    assert late.value.status == 504 and "activation deadline" in late.value.reason
    assert activator.held("default", "r") == 0


async def _enter(activator: Activator) -> None:
    async with activator.admit("default", "f", "r", 0):
        pass


async def test_reports_carry_the_time_weighted_queue() -> None:
    capacity, demand, clock = Capacity(), Demand(), FakeClock()
    activator = Activator(capacity, demand, ActivatorConfig(), clock=clock)
    activator.report()
    tasks = [asyncio.create_task(_enter(activator)) for _ in range(4)]
    await wait_until(lambda: activator.held("default", "r") == 4)
    demand.records.clear()
    clock.now += 0.5
    capacity.ready["r"] = 1
    activator.refresh("default", "f")
    await asyncio.gather(*tasks)
    clock.now += 0.5
    activator.report()
    (revision, source, concurrency, rps) = demand.records[-1]
    assert (revision, source) == ("r", "activator")
    assert concurrency == pytest.approx(2.0)  # 4 waiting for half of the second
    assert rps == pytest.approx(4.0)
