"""Has the revision of a deploy come up? The decision is pure; ``wait_ready`` polls the store.

A deploy of generation G is served once the controller has seen G
(``status.observedGeneration >= G``) and the newest revision is the newest ready one. It
has failed when, after that, the function's Ready condition is False because its newest
revision failed: traffic then stays on the revision that served before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fnmesh.platform.model import Function
from fnmesh.platform.model.resources import condition

FAILED_REASON = "RevisionFailed"


class FunctionReader(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Served:
    revision: str
    url: str


@dataclass(frozen=True, slots=True)
class Failed:
    revision: str | None
    message: str


class RevisionFailed(Exception):
    def __init__(self, failed: Failed) -> None:
        super().__init__(failed.message)
        self.revision = failed.revision


def readiness(function: Function, generation: int) -> Served | Failed | None:
    """Served, Failed, or None while the revision of ``generation`` is still coming up."""
    status = function.status
    if (status.observed_generation or 0) < generation:
        return None
    latest = status.latest_created_revision
    if latest and status.latest_ready_revision == latest:
        return Served(latest, status.url or "")
    ready = condition(status.conditions, "Ready")
    if ready is not None and ready.status == "False" and ready.reason == FAILED_REASON:
        return Failed(latest, ready.message or f"revision {latest} failed")
    return None


async def wait_ready(
    store: FunctionReader,
    namespace: str,
    name: str,
    generation: int,
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    every: float = 0.05,
) -> Served:
    """Poll until ``readiness`` decides; raises RevisionFailed or TimeoutError."""
    deadline = clock() + timeout
    while True:
        decided = readiness(Function.from_dict(store.get("Function", namespace, name)), generation)
        if isinstance(decided, Served):
            return decided
        if isinstance(decided, Failed):
            raise RevisionFailed(decided)
        if clock() >= deadline:
            raise TimeoutError(
                f"the new revision of {namespace}/{name} was not ready within {timeout:g}s"
            )
        await sleep(every)
