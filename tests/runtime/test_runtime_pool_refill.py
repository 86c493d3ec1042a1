"""The warm pool refills only when told, and then only after its refill delay, so new
interpreters do not compete with the cold start that emptied it."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from fnmesh.platform.runtime.local import pool as pool_module
from fnmesh.platform.runtime.local.pool import WarmPool


class FakeChild:
    """Stands in for ``asyncio.subprocess.Process``: alive until killed."""

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.stdin = None


class FakeProcess:
    def __init__(self) -> None:
        self.process = FakeChild()

    async def read_line(self, timeout: float) -> str:
        return "warm"

    async def wait(self) -> int:
        return 0

    async def kill(self) -> None:
        self.process.returncode = -9


class Spawner:
    def __init__(self) -> None:
        self.spawned: list[float] = []

    async def __call__(self, module: str, args: list[str], env: dict[str, str], **_: Any) -> Any:
        self.spawned.append(time.monotonic())
        return FakeProcess()


async def wait_until(what: str, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def spawner(monkeypatch: pytest.MonkeyPatch) -> Spawner:
    fake = Spawner()
    monkeypatch.setattr(pool_module, "spawn", fake)
    return fake


async def test_taking_does_not_refill_and_refill_waits_its_delay(spawner: Spawner) -> None:
    pool = WarmPool(2, refill_delay=0.2)
    pool.start()
    try:
        await wait_until("the pool to fill", lambda: pool.warm == 2)
        assert len(spawner.spawned) == 2
        assert pool.take() is not None and pool.take() is not None
        assert pool.take() is None  # empty: the caller starts a fresh process itself
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(spawner.spawned) == 2, "a take alone must not start new processes"

        asked = time.monotonic()
        pool.refill()
        pool.refill()  # a second cold start finishing meanwhile joins the same refill
        await asyncio.sleep(0.05)
        assert len(spawner.spawned) == 2, "refilled before its delay"
        await wait_until("the refill", lambda: pool.warm == 2)
        assert len(spawner.spawned) == 4
        assert spawner.spawned[2] - asked >= 0.2
        pool.refill()  # full: nothing to do
        await asyncio.sleep(0.3)
        assert len(spawner.spawned) == 4
    finally:
        await pool.close()


async def test_a_closed_pool_does_not_refill(spawner: Spawner) -> None:
    pool = WarmPool(1, refill_delay=0.05)
    pool.start()
    await wait_until("the pool to fill", lambda: pool.warm == 1)
    assert pool.take() is not None
    pool.refill()
    await pool.close()
    await asyncio.sleep(0.1)
    assert len(spawner.spawned) == 1
