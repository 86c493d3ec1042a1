"""Time-weighted concurrency: the average number of requests in flight over an interval.

Like Knative's queue-proxy, every change of the in-flight count adds the area under the
step curve since the previous change; a report divides the area by the interval's length.
A request that stays in flight across reports counts in each of them for the part it spent
there. Pure: the caller passes ``now`` (seconds on any monotonic clock).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadSample:
    """What happened since the previous sample."""

    start: float
    end: float
    concurrency: float  # time-weighted average in flight over [start, end]

    @property
    def interval(self) -> float:
        return self.end - self.start


class ConcurrencyIntegral:
    """Tracks requests in flight and their integral over time."""

    __slots__ = ("_area", "_last", "_start", "in_flight")

    def __init__(self, now: float) -> None:
        self.in_flight = 0
        self._start = now
        self._last = now
        self._area = 0.0

    def arrived(self, now: float) -> None:
        """A request entered."""
        self._area += self.in_flight * (now - self._last)
        self._last = now
        self.in_flight += 1

    def departed(self, now: float) -> None:
        """A request left (answered, refused or cancelled)."""
        self._area += self.in_flight * (now - self._last)
        self._last = now
        self.in_flight -= 1

    def sample(self, now: float) -> LoadSample:
        """The average since the previous sample (or creation); starts a new interval."""
        area = self._area + self.in_flight * (now - self._last)
        start = self._start
        length = now - start
        average = area / length if length > 0 else float(self.in_flight)
        self._start = self._last = now
        self._area = 0.0
        return LoadSample(start, now, average)
