"""KPA-style autoscaling of revisions (after Knative Serving's pod autoscaler).

Purely computational; the driver lives in autoscaler/driver.py. Everything else here is a
function of its inputs and `now`: no clock, no I/O, no asyncio, no environment.

- `spec`: `ScalingSpec`, the settings of one revision, with defaults and validation.
- `window`: `MetricWindow`, per-second load reports folded into stable/panic averages.
- `decide`: `decide()`, the replica count wanted now, and the `ScalerState` it carries.
"""

from fnmesh.autoscaler.decide import KEEP, Decision, Reason, ScalerState, decide
from fnmesh.autoscaler.spec import CONCURRENCY, RPS, ScalingSpec
from fnmesh.autoscaler.window import Aggregates, MetricReader, MetricWindow, Observation

__all__ = [
    "CONCURRENCY",
    "KEEP",
    "RPS",
    "Aggregates",
    "Decision",
    "MetricReader",
    "MetricWindow",
    "Observation",
    "Reason",
    "ScalerState",
    "ScalingSpec",
    "decide",
]
