"""Supervised loops: restart with backoff on any exception, remember what went wrong."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger("fnmesh.tasks")

Body = Callable[[], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
Phase = Literal["running", "failing", "stopped"]


@dataclass(frozen=True, slots=True)
class TaskState:
    """What ``/healthz`` shows of one task."""

    name: str
    state: Phase
    failures: int  # every failure since the task started
    consecutive: int  # failures since it last worked
    last_error: str | None = None
    last_failure: float | None = None  # epoch seconds

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state,
            "failures": self.failures,
            "consecutiveFailures": self.consecutive,
            "lastError": self.last_error,
            "lastFailure": self.last_failure,
        }


class Supervised:
    """One named loop, restarted after every exception until it is stopped."""

    def __init__(self, board: TaskBoard, name: str, body: Body) -> None:
        self.board = board
        self.name = name
        self.body = body
        self.failures = 0
        self.consecutive = 0
        self.last_error: str | None = None
        self.last_failure: float | None = None
        self._stopped = False
        self._task = asyncio.create_task(self._supervise(), name=name)

    def failed(self, error: BaseException, what: str = "") -> float:
        """Record a failure; return how long to back off before trying again."""
        self.failures += 1
        self.consecutive += 1
        detail = str(error) or type(error).__name__
        self.last_error = f"{what}: {detail}" if what else detail
        self.last_failure = self.board.clock()
        return self.board.delay(self.consecutive)

    def recovered(self) -> None:
        """The loop worked again: it is no longer failing (the counts are kept). A task
        whose last failure is ``healthy_after`` seconds old counts as recovered anyway."""
        self.consecutive = 0

    def state(self) -> TaskState:
        phase: Phase = "stopped" if self._task.done() else "running"
        recent = (
            self.last_failure is not None
            and self.board.clock() - self.last_failure < self.board.healthy_after
        )
        if phase == "running" and self.consecutive > 0 and recent:
            phase = "failing"
        return TaskState(
            self.name,
            phase,
            self.failures,
            self.consecutive,
            self.last_error,
            self.last_failure,
        )

    async def stop(self) -> None:
        self._stopped = True
        self.board.forget(self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _supervise(self) -> None:
        while not self._stopped:
            started = self.board.clock()
            try:
                await self.body()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.board.clock() - started >= self.board.healthy_after:
                    self.recovered()  # it ran well for a while: start the backoff afresh
                delay = self.failed(error)
                log.error(
                    "task %r failed (%d in a row; again in %.1f s): %s",
                    self.name,
                    self.consecutive,
                    delay,
                    self.last_error,
                    exc_info=error if self.consecutive == 1 else None,  # one traceback a streak
                )
            else:
                delay = self.board.delay(1)
                log.warning("task %r returned; starting it again in %.1f s", self.name, delay)
            await self.board.sleep(delay)


class TaskBoard:
    """Every supervised task of one process, and their states."""

    def __init__(
        self,
        *,
        minimum: float = 0.1,
        maximum: float = 10.0,
        healthy_after: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError(f"backoff: need 0 < minimum <= maximum; got {minimum}, {maximum}")
        self.minimum = minimum
        self.maximum = maximum
        self.healthy_after = healthy_after
        self.clock = clock
        self.sleep = sleep
        self._tasks: dict[int, Supervised] = {}

    def delay(self, consecutive: int) -> float:
        """The backoff after ``consecutive`` failures in a row: doubling, capped."""
        return float(min(self.maximum, self.minimum * 2 ** max(0, consecutive - 1)))

    def start(self, name: str, body: Body) -> Supervised:
        """Run ``body`` (a coroutine function) until stopped, restarting it on failure."""
        task = Supervised(self, name, body)
        self._tasks[id(task)] = task
        return task

    def forget(self, task: Supervised) -> None:
        self._tasks.pop(id(task), None)

    def states(self) -> list[TaskState]:
        return sorted((t.state() for t in self._tasks.values()), key=lambda s: s.name)

    def failing(self) -> list[TaskState]:
        return [s for s in self.states() if s.state != "running"]

    async def close(self) -> None:
        await asyncio.gather(*(t.stop() for t in list(self._tasks.values())))
