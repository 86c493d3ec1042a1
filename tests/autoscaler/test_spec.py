import dataclasses
import math
from typing import Any

import pytest

from fnmesh.autoscaler import ScalingSpec


def test_defaults_are_knatives() -> None:
    spec = ScalingSpec()
    assert spec.validate() == []
    assert (spec.metric, spec.target_utilization) == ("concurrency", 0.7)
    assert (spec.min_scale, spec.max_scale, spec.initial_scale, spec.activation_scale) == (
        0,
        0,
        1,
        1,
    )
    assert spec.stable_window == 60.0
    assert spec.panic_window == pytest.approx(6.0)
    assert spec.panic_threshold_percentage == 200.0
    assert (spec.max_scale_up_rate, spec.max_scale_down_rate) == (1000.0, 2.0)
    assert (spec.scale_down_delay, spec.scale_to_zero_grace_period) == (0.0, 30.0)
    assert (spec.target_burst_capacity, spec.tick_interval) == (200.0, 2.0)


@pytest.mark.parametrize(
    ("spec", "total", "per_replica"),
    [
        (ScalingSpec(), 100.0, 70.0),
        (ScalingSpec(container_concurrency=10), 10.0, 7.0),
        (ScalingSpec(target=50.0), 50.0, 35.0),
        (ScalingSpec(target=50.0, container_concurrency=10), 10.0, 7.0),
        (ScalingSpec(target=5.0, container_concurrency=10), 5.0, 3.5),
        (ScalingSpec(metric="rps"), 200.0, 140.0),
        (ScalingSpec(metric="rps", container_concurrency=10), 200.0, 140.0),
        (ScalingSpec(metric="rps", target=10.0, target_utilization=1.0), 10.0, 10.0),
        (ScalingSpec(target=0.01, target_utilization=0.01), 0.01, 0.01),
    ],
)
def test_resolved_targets(spec: ScalingSpec, total: float, per_replica: float) -> None:
    assert spec.target_total == pytest.approx(total)
    assert spec.target_per_replica == pytest.approx(per_replica)


@pytest.mark.parametrize(
    ("replicas", "min_scale", "max_scale", "expected"),
    [(0, 0, 0, 0), (0, 2, 0, 2), (50, 0, 0, 50), (50, 1, 5, 5), (3, 1, 5, 3)],
)
def test_bounded(replicas: int, min_scale: int, max_scale: int, expected: int) -> None:
    assert ScalingSpec(min_scale=min_scale, max_scale=max_scale).bounded(replicas) == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"metric": "cpu"}, "scale.metric: must be 'concurrency' or 'rps'; got 'cpu'"),
        ({"target": 0.0}, "scale.target: must be a number >= 0.01; got 0.0"),
        ({"target": math.nan}, "scale.target: must be a number >= 0.01; got nan"),
        ({"container_concurrency": -1}, "concurrency: must be >= 0 (0 = unlimited); got -1"),
        ({"target_utilization": 0.0}, "scale.targetUtilization: must be between 0.01 and 1.0"),
        ({"target_utilization": 70.0}, "scale.targetUtilization: must be between 0.01 and 1.0"),
        ({"min_scale": -1}, "scale.min: must be >= 0 and <= scale.max; got -1"),
        (
            {"min_scale": 5, "max_scale": 3},
            "scale.min: must be >= 0 and <= scale.max; got 5: "
            "lower scale.min or raise scale.max (now 3)",
        ),
        ({"max_scale": -1}, "scale.max: must be >= 0 (0 = no limit); got -1"),
        ({"initial_scale": -1}, "scale.initial: must be >= 0; got -1"),
        ({"activation_scale": 0}, "scale.activationScale: must be >= 1 and <= scale.max; got 0"),
        (
            {"activation_scale": 4, "max_scale": 3},
            "scale.activationScale: must be >= 1 and <= scale.max; got 4",
        ),
        ({"stable_window": 0.5}, "scale.stableWindow: must be between 1 and 3600 seconds"),
        ({"stable_window": math.inf}, "scale.stableWindow: must be between 1 and 3600 seconds"),
        ({"panic_window_percentage": 0.0}, "scale.panicWindowPercentage: must be between 1"),
        ({"panic_threshold_percentage": 100.0}, "scale.panicThresholdPercentage: must be"),
        ({"max_scale_up_rate": 1.0}, "scale.maxScaleUpRate: must be a number > 1"),
        ({"max_scale_down_rate": 0.5}, "scale.maxScaleDownRate: must be a number > 1"),
        ({"scale_down_delay": -1.0}, "scale.scaleDownDelay: must be between 0 and 3600"),
        ({"scale_to_zero_grace_period": 7200.0}, "scale.scaleToZeroGracePeriod: must be"),
        ({"target_burst_capacity": -2.0}, "scale.targetBurstCapacity: must be >= 0, or -1"),
        ({"tick_interval": 0.0}, "scale.tickInterval: must be between 0.01 and 60 seconds"),
    ],
)
def test_validation_names_the_field_and_the_fix(overrides: dict[str, Any], message: str) -> None:
    problems = dataclasses.replace(ScalingSpec(), **overrides).validate()
    assert len(problems) == 1, problems
    assert problems[0].startswith(message), problems[0]


def test_validation_reports_every_problem() -> None:
    spec = ScalingSpec(metric="cpu", min_scale=-1, stable_window=0.0, max_scale_down_rate=1.0)
    fields = [problem.split(":")[0] for problem in spec.validate()]
    assert fields == ["scale.metric", "scale.min", "scale.stableWindow", "scale.maxScaleDownRate"]


@pytest.mark.parametrize(
    "spec",
    [
        ScalingSpec(min_scale=3, max_scale=3, activation_scale=3, initial_scale=0),
        ScalingSpec(metric="rps", target=0.01, target_burst_capacity=-1.0),
        ScalingSpec(stable_window=3600.0, panic_window_percentage=100.0),
        ScalingSpec(panic_threshold_percentage=1000.0, scale_to_zero_grace_period=0.0),
    ],
)
def test_edges_of_the_ranges_are_valid(spec: ScalingSpec) -> None:
    assert spec.validate() == []
