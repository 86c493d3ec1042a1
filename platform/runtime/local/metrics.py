"""The local runtime's Prometheus metrics: cold starts and scale events, per revision.

They live in the platform's registry, not in the replicas' proxies, so they survive the
replicas: a replica that crashes and is started again adds one more cold start, and a
scale event counts a change of the desired replica count (whoever asked for it: the
autoscaler, or the controller scaling an inactive revision to zero), never a restart.
A removed revision's series are dropped with it.

- ``cold_start_seconds{namespace, function, revision}``: histogram of the time from
  launching a replica (taking warm processes, or starting fresh ones) to its being
  ready: runtime loaded, proxy certified and listening.
- ``scale_events_total{namespace, function, revision, direction="up|down"}``.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Histogram

from fnmesh.platform.model import Revision

LABELS = ("namespace", "function", "revision")
COLD_START_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DIRECTIONS = ("up", "down")


def _labels(revision: Revision) -> tuple[str, str, str]:
    return revision.namespace, revision.spec.function, revision.name


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.cold_starts = Histogram(
            "cold_start_seconds",
            "Time from launching a replica to its being ready to serve",
            LABELS,
            buckets=COLD_START_BUCKETS,
            registry=registry,
        )
        self.scale_events = Counter(
            "scale_events",
            "Changes of a revision's desired replica count",
            (*LABELS, "direction"),
            registry=registry,
        )

    def cold_start(self, revision: Revision, seconds: float) -> None:
        self.cold_starts.labels(*_labels(revision)).observe(seconds)

    def scaled(self, revision: Revision, before: int, after: int) -> None:
        if after != before:
            direction = "up" if after > before else "down"
            self.scale_events.labels(*_labels(revision), direction).inc()

    def forget(self, revision: Revision) -> None:
        """Drop the series of a revision that no longer exists."""
        labels = _labels(revision)
        with contextlib.suppress(KeyError):
            self.cold_starts.remove(*labels)
        for direction in DIRECTIONS:
            with contextlib.suppress(KeyError):
                self.scale_events.remove(*labels, direction)
