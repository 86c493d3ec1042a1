"""Counts of replica output the platform dropped, and their Prometheus metrics.

Reasons: ``rate`` (over a replica's lines or bytes per second), ``backlog`` (the log
writer's buffer was full), ``error`` (writing failed, e.g. the disk is full; or the
output's consumer failed). Counted from the event loop and from the log writer's thread,
hence the lock. Exposed on the platform's registry as ``log_dropped_lines_total`` and
``log_dropped_bytes_total`` with a ``reason`` label.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

REASONS = ("rate", "backlog", "error")


class LogDrops:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines = dict.fromkeys(REASONS, 0)
        self._bytes = dict.fromkeys(REASONS, 0)

    def add(self, reason: str, lines: int, size: int) -> None:
        with self._lock:
            self._lines[reason] += lines
            self._bytes[reason] += size

    def lines(self, reason: str) -> int:
        with self._lock:
            return self._lines[reason]

    def bytes(self, reason: str) -> int:
        with self._lock:
            return self._bytes[reason]

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self._lines), dict(self._bytes)


# The platform's counts: every Output and LogBook counts here unless given others.
DROPS = LogDrops()


class LogDropMetrics(Collector):
    def __init__(self, drops: LogDrops) -> None:
        self.drops = drops

    def collect(self) -> Iterator[CounterMetricFamily]:
        lines, sizes = self.drops.snapshot()
        dropped_lines = CounterMetricFamily(
            "log_dropped_lines", "Lines of replica output dropped, by reason", labels=["reason"]
        )
        dropped_bytes = CounterMetricFamily(
            "log_dropped_bytes", "Bytes of replica output dropped, by reason", labels=["reason"]
        )
        for reason in REASONS:
            dropped_lines.add_metric([reason], lines[reason])
            dropped_bytes.add_metric([reason], sizes[reason])
        yield dropped_lines
        yield dropped_bytes


def register(registry: CollectorRegistry, drops: LogDrops) -> None:
    registry.register(LogDropMetrics(drops))
