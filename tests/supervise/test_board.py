"""Supervised loops: restarted with a growing backoff after any exception, their state
and last error kept for /healthz, on a fake clock (the backoff sleeps take no time)."""

import asyncio
import sqlite3
from collections.abc import Callable

import pytest

from fnmesh.platform.supervise import TaskBoard


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def until(what: str, check: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def board(time: FakeTime) -> TaskBoard:
    return TaskBoard(
        minimum=0.5, maximum=4.0, healthy_after=30.0, clock=time.clock, sleep=time.sleep
    )


async def test_a_loop_that_raises_is_restarted_with_doubling_backoff() -> None:
    time = FakeTime()
    tasks = board(time)
    runs = 0
    done = asyncio.Event()

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs <= 5:
            raise sqlite3.OperationalError("database or disk is full")
        done.set()
        await asyncio.Event().wait()

    task = tasks.start("revision default/hello-00001", body)
    try:
        await asyncio.wait_for(done.wait(), 5)
        assert time.slept == [0.5, 1.0, 2.0, 4.0, 4.0]
        state = task.state()
        assert (state.state, state.failures, state.consecutive) == ("failing", 5, 5)
        assert state.last_error == "database or disk is full"
        assert [s.name for s in tasks.failing()] == ["revision default/hello-00001"]
        task.recovered()
        assert task.state().state == "running"
        assert task.state().failures == 5
        assert tasks.failing() == []
    finally:
        await tasks.close()
    assert tasks.states() == []


async def test_an_old_failure_no_longer_counts_as_failing() -> None:
    time = FakeTime()
    tasks = board(time)
    failed = False

    async def body() -> None:
        nonlocal failed
        if not failed:
            failed = True
            raise RuntimeError("boom")
        await asyncio.Event().wait()

    task = tasks.start("controller worker", body)
    try:
        await until("the restart", lambda: len(time.slept) == 1)
        assert task.state().state == "failing"
        time.now += 30.0
        assert task.state().state == "running"
    finally:
        await tasks.close()


async def test_failures_reported_by_the_loop_itself() -> None:
    time = FakeTime()
    tasks = board(time)
    task = tasks.start("controller worker", asyncio.Event().wait)
    try:
        assert task.failed(OSError("disk I/O error"), "reconciling default/hello") == 0.5
        assert task.failed(OSError("disk I/O error"), "reconciling default/hello") == 1.0
        state = task.state()
        assert state.state == "failing"
        assert state.last_error == "reconciling default/hello: disk I/O error"
        assert state.to_dict()["consecutiveFailures"] == 2
        task.recovered()
        assert task.state().state == "running"
    finally:
        await tasks.close()


async def test_a_loop_that_returns_is_started_again() -> None:
    time = FakeTime()
    tasks = board(time)
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1

    task = tasks.start("gateway routes", body)
    try:
        await until("three runs", lambda: runs >= 3)
        assert task.state().failures == 0
    finally:
        await tasks.close()


async def test_stopping_cancels_the_loop_and_forgets_it() -> None:
    tasks = TaskBoard()
    cancelled = asyncio.Event()

    async def body() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    task = tasks.start("autoscaler ticks", body)
    await asyncio.sleep(0)
    assert [s.state for s in tasks.states()] == ["running"]
    await task.stop()
    assert cancelled.is_set()
    assert tasks.states() == []


def test_backoff_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="backoff"):
        TaskBoard(minimum=0.0)
