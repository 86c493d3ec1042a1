"""Admission for one revision: capacity slots and a bounded FIFO queue of waiters.

Capacity is ``replicas * concurrency`` (unbounded when concurrency is 0, but never while
there are no replicas). A request takes a slot at once when one is free and nobody is
queued, waits in FIFO order otherwise, and is refused when the queue is full. Released
slots and new replicas wake the oldest waiters first.
"""

from __future__ import annotations

import asyncio
from collections import deque


class QueueFull(Exception):
    pass


class Throttle:
    def __init__(self, queue_depth: int) -> None:
        self.queue_depth = queue_depth
        self.replicas = 0
        self.concurrency = 0
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def capacity(self) -> float:
        if self.replicas <= 0:
            return 0
        return float("inf") if self.concurrency <= 0 else self.replicas * self.concurrency

    def resize(self, replicas: int, concurrency: int) -> None:
        self.replicas, self.concurrency = replicas, concurrency
        self._wake()

    async def acquire(self) -> None:
        if not self._waiters and self.in_flight < self.capacity:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.queue_depth:
            raise QueueFull
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was granted just as we gave up: hand it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.capacity:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
