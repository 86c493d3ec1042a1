"""The revision's concurrency limit with a bounded FIFO queue; overload is a plain 503.

``ConcurrencyState`` is the shared state object: requests in flight (admitted to the
function), requests queued for a slot, and the load integral the stats reporter samples
(it counts both, like Knative's queue-proxy: waiting requests are demand too). A finished
request hands its slot straight to the oldest waiter, so nobody overtakes the queue.
With ``limit`` 0 there is no limit and no queue, but no more than ``queue_depth``
requests are held at once: past that, overload is refused the same way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from fnmesh.platform.http import Handler, Peer, Request, Response, json_error
from fnmesh.platform.mesh.stats.load import ConcurrencyIntegral


def default_queue_depth(limit: int) -> int:
    """100 waiting requests per slot, or 1000 without a limit."""
    return 100 * max(1, limit) if limit > 0 else 1000


class QueueFull(Exception):
    pass


class ConcurrencyState:
    def __init__(
        self,
        limit: int,
        queue_depth: int,
        load: ConcurrencyIntegral,
        clock: Callable[[], float],
    ) -> None:
        if limit < 0 or queue_depth < 0:
            raise ValueError("the concurrency limit and queue depth must be >= 0")
        self.limit = limit
        self.queue_depth = queue_depth
        self.load = load
        self.clock = clock
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting in line for one; QueueFull when the line is full."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.queue_depth:
            raise QueueFull
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releasing request counted the slot for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived with the cancellation: pass it on
            elif waiter in self._waiters:  # a release may have dropped it already
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give the slot to the oldest waiter, or free it."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1


class LimitConcurrency:
    def __init__(self, inner: Handler, state: ConcurrencyState) -> None:
        self.inner = inner
        self.state = state

    async def __call__(self, request: Request, peer: Peer) -> Response:
        state = self.state
        load = state.load
        load.arrived(state.clock())
        try:
            if state.limit == 0:
                if state.in_flight >= state.queue_depth:
                    return json_error(
                        503,
                        f"request queue full: {state.in_flight} requests held by this"
                        " replica already; retry later or on another replica",
                    )
                state.in_flight += 1
                try:
                    return await self.inner(request, peer)
                finally:
                    state.in_flight -= 1
            try:
                await state.acquire()
            except QueueFull:
                return json_error(
                    503,
                    f"request queue full: {state.queued} requests wait for this replica's"
                    f" {state.limit} slots; retry later or on another replica",
                )
            try:
                return await self.inner(request, peer)
            finally:
                state.release()
        finally:
            load.departed(state.clock())
