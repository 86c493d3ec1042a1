"""Shutdown in steps: each registered as its component starts, run last-started first.

A step that fails is logged and the next one still runs, so whatever started is stopped
whatever happened -- after a graceful stop and after a start that failed half way alike.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("fnmesh")

Step = Callable[[], Awaitable[object] | object]


class Stops:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Step]] = []

    def add(self, what: str, step: Step) -> None:
        """Run ``step()`` (awaited when it returns an awaitable) at stop, before every
        step added earlier."""
        self._steps.append((what, step))

    @property
    def pending(self) -> list[str]:
        """What is still to stop, in the order it will stop."""
        return [what for what, _ in reversed(self._steps)]

    async def run(self) -> None:
        while self._steps:
            what, step = self._steps.pop()
            try:
                result = step()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("stopping the %s failed; stopping the rest", what)
