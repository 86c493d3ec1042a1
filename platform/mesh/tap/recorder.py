"""The tap session's state: filter, rate limit and the ring of events waiting to be sent.

The ring is bounded: when the reporter cannot send for a while, the oldest events go
(``dropped`` counts them). A request is tapped whole or not at all: admitting it takes
tokens for all its events (request-init, response-init, response-end) at once.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from fnmesh.platform.mesh.tap.bucket import TokenBucket
from fnmesh.platform.mesh.tap.filters import TapFilter

EVENTS_PER_REQUEST = 3
TapEvent = dict[str, Any]


class TapRecorder:
    def __init__(self, *, rate: float = 100.0, capacity: int = 1000) -> None:
        if capacity <= 0:
            raise ValueError("the tap ring needs room for at least one event")
        self.rate = rate
        self.capacity = capacity
        self.session: TapFilter | None = None
        self.dropped = 0
        self._bucket: TokenBucket | None = None
        self._events: deque[TapEvent] = deque()

    @property
    def active(self) -> bool:
        return self.session is not None

    def start(self, session: TapFilter, now: float) -> None:
        """Open (or change the filters of) a session; a new session starts a full bucket."""
        if self.session is None or self._bucket is None:
            burst = max(float(EVENTS_PER_REQUEST), self.rate)
            self._bucket = TokenBucket(self.rate, burst, now)
        self.session = session

    def stop(self) -> None:
        self.session = None
        self._bucket = None

    def admit(self, now: float, method: str, path: str) -> bool:
        """Should this request be tapped? (session open, filters match, within the rate)"""
        session, bucket = self.session, self._bucket
        if session is None or bucket is None or not session.matches(method, path):
            return False
        return bucket.take(now, EVENTS_PER_REQUEST)

    def record(self, event: TapEvent) -> None:
        events = self._events
        if len(events) >= self.capacity:
            events.popleft()
            self.dropped += 1
        events.append(event)

    @property
    def pending(self) -> int:
        return len(self._events)

    def take(self, limit: int | None = None) -> list[TapEvent]:
        """Remove and return the oldest pending events (all of them without ``limit``)."""
        events = self._events
        count = len(events) if limit is None else min(limit, len(events))
        return [events.popleft() for _ in range(count)]

    def put_back(self, events: list[TapEvent]) -> None:
        """Return events that could not be sent to the front of the ring (room allowing)."""
        room = self.capacity - len(self._events)
        keep = events[len(events) - room :] if room < len(events) else events
        self.dropped += len(events) - len(keep)
        self._events.extendleft(reversed(keep))
