"""Live tap sessions: who is watching which requests.

A session (an ``fn tap`` caller behind the API) names a function and optional filters;
the hub hands every report's tap events to the sessions that match and tells reporters,
in its reply, which filters are active for their revision so they only send those.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TapFilter:
    namespace: str
    function: str
    revision: str | None = None
    method: str | None = None
    path_prefix: str | None = None

    def matches(self, event: dict[str, Any]) -> bool:
        if self.method and str(event.get("method", "")).upper() != self.method.upper():
            return False
        if self.path_prefix and not str(event.get("path", "")).startswith(self.path_prefix):
            return False
        return not (self.revision and event.get("revision") != self.revision)

    def wire(self) -> dict[str, str]:
        out = {"method": self.method, "pathPrefix": self.path_prefix}
        return {k: v for k, v in out.items() if v}


@dataclass(slots=True)
class TapSession:
    filter: TapFilter
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(1000))
    dropped: int = 0

    def offer(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def next(self, timeout: float, limit: int = 500) -> list[dict[str, Any]]:
        """The events that arrived, at most ``limit``; waits up to ``timeout`` seconds for
        the first (an empty list when none came)."""
        try:
            events = [await asyncio.wait_for(self.queue.get(), timeout)]
        except TimeoutError:
            return []
        while len(events) < limit and not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events


class TapSessions:
    def __init__(self) -> None:
        self._sessions: dict[int, TapSession] = {}
        self._ids = itertools.count(1)

    def open(self, tap_filter: TapFilter) -> tuple[int, TapSession]:
        key = next(self._ids)
        session = self._sessions[key] = TapSession(tap_filter)
        return key, session

    def close(self, key: int) -> None:
        self._sessions.pop(key, None)

    def wanted(self, namespace: str, function: str, revision: str) -> list[dict[str, str]] | None:
        """The filters reporters of this revision should apply; None when nobody taps it."""
        found = [
            s.filter.wire()
            for s in self._sessions.values()
            if s.filter.namespace == namespace
            and s.filter.function == function
            and s.filter.revision in (None, revision)
        ]
        return found or None

    def deliver(self, namespace: str, function: str, events: tuple[dict[str, Any], ...]) -> None:
        for session in self._sessions.values():
            if session.filter.namespace != namespace or session.filter.function != function:
                continue
            for event in events:
                if session.filter.matches(event):
                    session.offer(event)
