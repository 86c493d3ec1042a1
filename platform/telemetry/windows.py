"""Request outcomes per revision over time: success rate, RPS, latency percentiles (pure).

Reports are folded into one-second buckets (keyed by the receiver's clock); a query over
``window`` seconds ending at ``now`` sums the buckets in it. Percentiles come from the
latency histogram the way Prometheus' ``histogram_quantile`` estimates them (linear
interpolation inside the bucket).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from fnmesh.platform.telemetry.report import LATENCY_BUCKETS_MS, Report


@dataclass(frozen=True, slots=True)
class Golden:
    requests: int
    success: int
    failure: int
    seconds: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def success_rate(self) -> float | None:
        total = self.success + self.failure
        return self.success / total if total else None


class _Second:
    __slots__ = ("failure", "latency", "requests", "second", "success")

    def __init__(self, second: int) -> None:
        self.second = second
        self.requests = 0
        self.success = 0
        self.failure = 0
        self.latency = [0] * len(LATENCY_BUCKETS_MS)


class OutcomeWindow:
    def __init__(self, retention: float = 600.0) -> None:
        self.retention = retention
        self._seconds: deque[_Second] = deque()

    def record(self, report: Report, now: float) -> None:
        second = int(now)
        if not self._seconds or self._seconds[-1].second != second:
            self._seconds.append(_Second(second))
        bucket = self._seconds[-1]
        bucket.requests += report.requests
        bucket.success += report.success
        bucket.failure += report.failure
        for bound, count in report.latency.items():
            index = _bucket_index(bound)
            if index is not None:
                bucket.latency[index] += count
        while self._seconds and self._seconds[0].second < second - self.retention:
            self._seconds.popleft()

    def golden(self, window: float, now: float) -> Golden:
        start = now - window
        requests = success = failure = 0
        latency = [0] * len(LATENCY_BUCKETS_MS)
        for bucket in self._seconds:
            if bucket.second + 1 <= start or bucket.second > now:
                continue
            requests += bucket.requests
            success += bucket.success
            failure += bucket.failure
            for i, count in enumerate(bucket.latency):
                latency[i] += count
        return Golden(
            requests,
            success,
            failure,
            window,
            quantile(0.5, latency),
            quantile(0.95, latency),
            quantile(0.99, latency),
        )


def _bucket_index(bound: float) -> int | None:
    for i, edge in enumerate(LATENCY_BUCKETS_MS):
        if math.isclose(edge, bound):
            return i
    return None


def quantile(q: float, counts: list[int]) -> float | None:
    """Prometheus-style quantile estimate from per-bucket (non-cumulative) counts."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    lower = 0.0
    for edge, count in zip(LATENCY_BUCKETS_MS, counts, strict=True):
        if seen + count >= rank and count:
            return lower + (edge - lower) * (rank - seen) / count
        seen += count
        lower = edge
    return LATENCY_BUCKETS_MS[-1]
