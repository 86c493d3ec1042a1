"""Waiting until a route table shows a ready replica of a revision, with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol


class ReadyRoutes(Protocol):
    """A route table, as far as waiting for readiness needs it."""

    def ready_replicas(self, namespace: str, function: str, revision: str) -> int: ...

    def listen(self, callback: Callable[[str, str], None]) -> None: ...


class ReadyWaiter:
    """Wakes waiters when ``routes`` change for their function (one listener in all)."""

    def __init__(self, routes: ReadyRoutes) -> None:
        self.routes = routes
        self._changed: dict[tuple[str, str], set[asyncio.Event]] = {}
        routes.listen(self._routes_changed)

    def _routes_changed(self, namespace: str, function: str) -> None:
        for event in self._changed.get((namespace, function), ()):
            event.set()

    async def wait_ready(
        self, namespace: str, function: str, revision: str, timeout: float
    ) -> bool:
        """True once ``revision`` has a ready replica; False after ``timeout`` seconds."""
        if self.routes.ready_replicas(namespace, function, revision) > 0:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        event = asyncio.Event()
        waiting = self._changed.setdefault((namespace, function), set())
        waiting.add(event)
        try:
            while self.routes.ready_replicas(namespace, function, revision) == 0:
                left = deadline - loop.time()
                if left <= 0:
                    return False
                event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), left)
            return True
        finally:
            waiting.discard(event)
            if not waiting:
                self._changed.pop((namespace, function), None)
