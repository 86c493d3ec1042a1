"""The platform's autoscaling defaults, and a revision's spec resolved against them."""

from __future__ import annotations

from dataclasses import dataclass

from fnmesh.autoscaler.spec import ScalingSpec
from fnmesh.platform.model import Revision


@dataclass(frozen=True, slots=True)
class AutoscalerConfig:
    """Platform defaults; a function's ``scale`` settings override them one by one."""

    tick_interval: float = 2.0
    stable_window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    target_utilization: float = 0.7
    scale_to_zero_grace_period: float = 30.0
    scale_down_delay: float = 0.0
    target_burst_capacity: float = 200.0
    max_scale: int = 20


def scaling_spec(revision: Revision, defaults: AutoscalerConfig) -> ScalingSpec:
    scale = revision.spec.scale

    def pick(value: float | None, default: float) -> float:
        return default if value is None else value

    max_scale = scale.max or defaults.max_scale
    return ScalingSpec(
        metric=scale.metric,
        target=scale.target,
        container_concurrency=revision.spec.concurrency,
        target_utilization=pick(scale.target_utilization, defaults.target_utilization),
        min_scale=min(scale.min, max_scale) if max_scale else scale.min,
        max_scale=max_scale,
        initial_scale=scale.initial if scale.initial is not None else 1,
        activation_scale=scale.activation_scale or 1,
        stable_window=pick(scale.stable_window, defaults.stable_window),
        panic_window_percentage=pick(
            scale.panic_window_percentage, defaults.panic_window_percentage
        ),
        panic_threshold_percentage=pick(
            scale.panic_threshold_percentage, defaults.panic_threshold_percentage
        ),
        scale_down_delay=pick(scale.scale_down_delay, defaults.scale_down_delay),
        scale_to_zero_grace_period=pick(
            scale.scale_to_zero_grace_period, defaults.scale_to_zero_grace_period
        ),
        target_burst_capacity=pick(scale.target_burst_capacity, defaults.target_burst_capacity),
        tick_interval=defaults.tick_interval,
    )
