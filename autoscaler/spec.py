"""What a revision's autoscaling is asked to do: `ScalingSpec`, Knative KPA defaults.

The defaults are those of Knative Serving's pod autoscaler (config-autoscaler). Field
paths in validation messages are those of the function manifest (`scale.min`,
`scale.stableWindow`, ...) so a user can find the setting to fix; the two settings only
the platform sets (`scale.maxScaleUpRate`, `scale.maxScaleDownRate`, `scale.tickInterval`)
are named the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONCURRENCY = "concurrency"
RPS = "rps"
METRICS = (CONCURRENCY, RPS)

#: Per-replica concurrency target when neither `target` nor `container_concurrency` is set.
CONCURRENCY_TARGET_DEFAULT = 100.0
#: Per-replica requests-per-second target when `target` is not set.
RPS_TARGET_DEFAULT = 200.0
#: The smallest per-replica target the decision divides by.
TARGET_MIN = 0.01

_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class ScalingSpec:
    """Autoscaling settings of one revision (times in seconds).

    `target` is the per-replica value of `metric` the revision is sized for; None picks the
    default: for concurrency the revision's `container_concurrency` when it is set (> 0),
    else 100; for rps 200. An explicit concurrency target above a set
    `container_concurrency` is lowered to it: a replica cannot take more than that.
    The scaling decision aims for `target * target_utilization` per replica.

    `target_burst_capacity`: 0 keeps the activator in the request path only while the
    revision is at zero; any negative value keeps it in the path always.
    """

    metric: str = CONCURRENCY
    target: float | None = None
    container_concurrency: int = 0
    target_utilization: float = 0.7
    min_scale: int = 0
    max_scale: int = 0  # 0: unlimited
    initial_scale: int = 1
    activation_scale: int = 1
    stable_window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_down_delay: float = 0.0
    scale_to_zero_grace_period: float = 30.0
    target_burst_capacity: float = 200.0
    tick_interval: float = 2.0

    @property
    def panic_window(self) -> float:
        """Length of the panic window in seconds (a percentage of the stable window)."""
        return self.stable_window * self.panic_window_percentage / 100.0

    @property
    def target_total(self) -> float:
        """The per-replica capacity of `metric` (before utilization is applied)."""
        if self.metric == RPS:
            return self.target if self.target is not None else RPS_TARGET_DEFAULT
        limit = float(self.container_concurrency)
        if self.target is None:
            return limit if limit > 0 else CONCURRENCY_TARGET_DEFAULT
        return min(self.target, limit) if limit > 0 else self.target

    @property
    def target_per_replica(self) -> float:
        """The per-replica value of `metric` the decision aims for."""
        return max(TARGET_MIN, self.target_total * self.target_utilization)

    def bounded(self, replicas: int) -> int:
        """`replicas` held within `min_scale` and `max_scale` (0 = no upper bound)."""
        replicas = max(replicas, self.min_scale)
        if self.max_scale > 0:
            replicas = min(replicas, self.max_scale)
        return replicas

    def validate(self) -> list[str]:
        """Every problem of this spec as "field.path: what is wrong; how to fix it"."""
        problems: list[str] = []

        def bad(path: str, rule: str, value: object, fix: str = "") -> None:
            problems.append(f"scale.{path}: {rule}; got {value!r}" + (f": {fix}" if fix else ""))

        if self.metric not in METRICS:
            bad("metric", "must be 'concurrency' or 'rps'", self.metric)
        if self.target is not None and not _at_least(self.target, TARGET_MIN):
            bad("target", f"must be a number >= {TARGET_MIN}", self.target)
        if self.container_concurrency < 0:
            problems.append(
                f"concurrency: must be >= 0 (0 = unlimited); got {self.container_concurrency!r}"
            )
        if not _between(self.target_utilization, 0.01, 1.0):
            bad(
                "targetUtilization",
                "must be between 0.01 and 1.0 (0.7 = 70 %)",
                self.target_utilization,
            )
        if self.max_scale < 0:
            bad("max", "must be >= 0 (0 = no limit)", self.max_scale)
        if self.min_scale < 0 or (self.max_scale > 0 and self.min_scale > self.max_scale):
            bad(
                "min",
                "must be >= 0 and <= scale.max",
                self.min_scale,
                f"lower scale.min or raise scale.max (now {self.max_scale})",
            )
        if self.initial_scale < 0:
            bad("initial", "must be >= 0", self.initial_scale)
        if self.activation_scale < 1 or (0 < self.max_scale < self.activation_scale):
            bad(
                "activationScale",
                "must be >= 1 and <= scale.max",
                self.activation_scale,
                f"lower scale.activationScale or raise scale.max (now {self.max_scale})",
            )
        if not _between(self.stable_window, 1.0, _HOUR):
            bad("stableWindow", "must be between 1 and 3600 seconds", self.stable_window)
        if not _between(self.panic_window_percentage, 1.0, 100.0):
            bad(
                "panicWindowPercentage",
                "must be between 1 and 100 (percent of stableWindow)",
                self.panic_window_percentage,
            )
        if not _between(self.panic_threshold_percentage, 110.0, 1000.0):
            bad(
                "panicThresholdPercentage",
                "must be between 110 and 1000 (percent of capacity)",
                self.panic_threshold_percentage,
            )
        if not _above(self.max_scale_up_rate, 1.0):
            bad(
                "maxScaleUpRate",
                "must be a number > 1 (1000 = practically unlimited)",
                self.max_scale_up_rate,
            )
        if not _above(self.max_scale_down_rate, 1.0):
            bad(
                "maxScaleDownRate",
                "must be a number > 1 (2 = at most halve per decision)",
                self.max_scale_down_rate,
            )
        if not _between(self.scale_down_delay, 0.0, _HOUR):
            bad("scaleDownDelay", "must be between 0 and 3600 seconds", self.scale_down_delay)
        if not _between(self.scale_to_zero_grace_period, 0.0, _HOUR):
            bad(
                "scaleToZeroGracePeriod",
                "must be between 0 and 3600 seconds",
                self.scale_to_zero_grace_period,
            )
        if not _at_least(self.target_burst_capacity, -1.0):
            bad(
                "targetBurstCapacity",
                "must be >= 0, or -1 for the activator always in the path",
                self.target_burst_capacity,
            )
        if not _between(self.tick_interval, 0.01, 60.0):
            bad("tickInterval", "must be between 0.01 and 60 seconds", self.tick_interval)
        return problems


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _at_least(value: float, low: float) -> bool:
    return _finite(value) and value >= low


def _above(value: float, low: float) -> bool:
    return _finite(value) and value > low


def _between(value: float, low: float, high: float) -> bool:
    return _finite(value) and low <= value <= high
