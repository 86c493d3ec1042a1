"""One decision at a time, from given window averages."""

import pytest

from fnmesh.autoscaler import (
    KEEP,
    Aggregates,
    MetricWindow,
    Observation,
    Reason,
    ScalerState,
    ScalingSpec,
    decide,
)
from fnmesh.autoscaler.decide import Decision

NOW = 1000.0
RUNNING = ScalerState(started=0.0, initialized=True)  # a revision the autoscaler has seen before


def once(
    spec: ScalingSpec,
    stable: float,
    ready: int,
    panic: float | None = None,
    state: ScalerState = RUNNING,
    now: float = NOW,
) -> Decision:
    averages = Aggregates(stable=stable, panic=stable if panic is None else panic)
    return decide(spec, state, averages, ready, now)


@pytest.mark.parametrize(
    ("stable", "ready", "expected"),
    [
        (0.001, 1, 1),
        (35.0, 1, 1),
        (70.0, 1, 1),
        (70.01, 1, 2),
        (140.0, 2, 2),
        (210.0, 3, 3),  # 210 / 70.00000000000001 must not become 4
        (700.0, 10, 10),
        (7000.0, 60, 100),
        (350.0, 10, 5),
    ],
)
def test_stable_count_is_ceil_of_average_over_target_times_utilization(
    stable: float, ready: int, expected: int
) -> None:
    decision = once(ScalingSpec(), stable, ready, panic=0.0)
    assert (decision.desired_replicas, decision.panic) == (expected, False)


@pytest.mark.parametrize(
    ("spec", "stable", "expected"),
    [
        (ScalingSpec(container_concurrency=10), 70.0, 10),  # target 10 * 0.7 = 7
        (ScalingSpec(target=10.0, target_utilization=1.0), 70.0, 7),
        (ScalingSpec(metric="rps"), 700.0, 5),  # 200 * 0.7 = 140 per replica
        (ScalingSpec(metric="rps", target=50.0, target_utilization=0.5), 700.0, 28),
        (ScalingSpec(target=3.0), 6.3, 3),  # 6.3 / (3 * 0.7) is 3.0000000000000004 in floats
    ],
)
def test_targets(spec: ScalingSpec, stable: float, expected: int) -> None:
    assert once(spec, stable, ready=expected, panic=0.0).desired_replicas == expected


@pytest.mark.parametrize(
    ("stable", "ready", "expected", "reason"),
    [
        (7000.0, 1, 2, Reason.SCALE_UP_LIMIT),
        (7000.0, 3, 6, Reason.SCALE_UP_LIMIT),
        (7000.0, 0, 2, Reason.SCALE_UP_LIMIT),  # no ready replica counts as one
        (140.0, 1, 2, Reason.STABLE),
        (1.0, 8, 4, Reason.SCALE_DOWN_LIMIT),
        (1.0, 3, 1, Reason.STABLE),  # floor(3 / 2) = 1
        (1.0, 9, 4, Reason.SCALE_DOWN_LIMIT),
    ],
)
def test_rate_limits(stable: float, ready: int, expected: int, reason: str) -> None:
    spec = ScalingSpec(max_scale_up_rate=2.0, max_scale_down_rate=2.0)
    decision = once(spec, stable, ready, panic=0.0)
    assert (decision.desired_replicas, decision.reason) == (expected, reason)


def test_slow_scale_up_rate_still_grows_by_at_least_one() -> None:
    # Knative's case: rate 1.1 on 2 replicas allows ceil(2.2) = 3, not 2.
    spec = ScalingSpec(target=1.0, target_utilization=1.0, max_scale_up_rate=1.1)
    assert once(spec, 5.0, ready=2, panic=0.0).desired_replicas == 3


def test_scale_down_rate_limits_the_way_to_zero() -> None:
    spec = ScalingSpec(scale_to_zero_grace_period=0.0)
    assert [once(spec, 0.0, ready).desired_replicas for ready in (8, 4, 2, 1)] == [4, 2, 1, 0]


@pytest.mark.parametrize(
    ("panic", "ready", "threshold", "panicking"),
    [
        (280.0, 2, 200.0, True),  # 4 replicas wanted / 2 ready = 200 %
        (210.0, 2, 200.0, False),  # 3 / 2 = 150 %
        (140.0, 0, 200.0, True),  # no ready replica counts as one: 2 / 1
        (70.0, 0, 200.0, False),
        (280.0, 2, 300.0, False),
        (420.0, 2, 300.0, True),
    ],
)
def test_panic_threshold(panic: float, ready: int, threshold: float, panicking: bool) -> None:
    spec = ScalingSpec(panic_threshold_percentage=threshold)
    decision = once(spec, 1.0, ready, panic=panic)
    assert decision.panic is panicking
    assert (decision.state.panic_since == NOW) is panicking
    if panicking:
        assert decision.desired_replicas == -(-panic // 70)
        assert decision.state.max_panic_replicas == decision.desired_replicas


def test_panic_takes_the_larger_window_and_never_shrinks() -> None:
    spec = ScalingSpec()
    entered = once(spec, 700.0, ready=2, panic=280.0)  # stable wants 10, panic 4
    assert (entered.desired_replicas, entered.reason) == (10, Reason.PANIC)
    calmer = once(spec, 70.0, ready=10, panic=70.0, state=entered.state, now=NOW + 2)
    assert (calmer.desired_replicas, calmer.panic, calmer.reason) == (10, True, Reason.PANIC_HOLD)


def test_panic_ends_a_full_stable_window_after_the_last_decision_over_the_threshold() -> None:
    spec = ScalingSpec()
    state = once(spec, 1.0, ready=1, panic=700.0).state
    still = once(spec, 70.0, ready=10, state=state, now=NOW + 60.0)
    assert (still.panic, still.desired_replicas) == (True, 10)
    over_again = once(spec, 70.0, ready=1, panic=700.0, state=still.state, now=NOW + 60.0)
    assert over_again.state.last_over_threshold == NOW + 60.0
    calm = once(spec, 70.0, ready=10, state=over_again.state, now=NOW + 121.0)
    assert (calm.panic, calm.state.panic_since, calm.state.max_panic_replicas) == (False, None, 0)
    assert calm.desired_replicas == 5  # stable again: 1 wanted, halved at most


def test_restart_with_replicas_starts_in_panic_to_hold_the_scale() -> None:
    spec = ScalingSpec()
    first = decide(spec, ScalerState(), Aggregates(0.0, 0.0), 6, NOW)
    assert (first.desired_replicas, first.panic, first.reason) == (6, True, Reason.PANIC_HOLD)
    later = decide(spec, first.state, Aggregates(0.0, 0.0), 6, NOW + 62.0)
    assert (later.desired_replicas, later.panic) == (3, False)


def test_fresh_revision_with_one_replica_does_not_panic() -> None:
    first = decide(ScalingSpec(), ScalerState(), Aggregates(35.0, 35.0), 1, NOW)
    assert (first.desired_replicas, first.panic, first.state.started) == (1, False, NOW)


@pytest.mark.parametrize(
    ("stable", "ready", "expected", "reason"),
    [
        (0.5, 0, 3, Reason.ACTIVATION_SCALE),
        (0.5, 5, 3, Reason.ACTIVATION_SCALE),  # a floor while there is demand
        (700.0, 10, 10, Reason.STABLE),
        (0.0, 0, 0, Reason.AT_ZERO),
    ],
)
def test_activation_scale(stable: float, ready: int, expected: int, reason: str) -> None:
    decision = once(ScalingSpec(activation_scale=3), stable, ready, panic=0.0)
    assert (decision.desired_replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("spec", "stable", "ready", "expected", "reason"),
    [
        (ScalingSpec(min_scale=2), 0.0, 2, 2, Reason.MIN_SCALE),
        (ScalingSpec(min_scale=2), 0.0, 0, 2, Reason.MIN_SCALE),
        (ScalingSpec(min_scale=2), 700.0, 10, 10, Reason.STABLE),
        (ScalingSpec(max_scale=5), 7000.0, 5, 5, Reason.MAX_SCALE),
        (ScalingSpec(max_scale=5, activation_scale=5), 1.0, 0, 5, Reason.ACTIVATION_SCALE),
    ],
)
def test_min_and_max_scale(
    spec: ScalingSpec, stable: float, ready: int, expected: int, reason: str
) -> None:
    decision = once(spec, stable, ready, panic=0.0)
    assert (decision.desired_replicas, decision.reason) == (expected, reason)


def test_max_scale_caps_panic() -> None:
    decision = once(ScalingSpec(max_scale=4), 7000.0, ready=1)
    assert (decision.desired_replicas, decision.panic, decision.reason) == (4, True, "max-scale")


def test_scale_down_delay_holds_the_largest_count_of_the_delay_window() -> None:
    spec = ScalingSpec(scale_down_delay=10.0, max_scale_down_rate=100.0)
    state, seen = RUNNING, []
    for t, stable in [(0, 700.0), (2, 70.0), (4, 210.0), (6, 70.0), (8, 70.0), (10, 70.0),
                      (12, 70.0), (14, 70.0)]:  # fmt: skip
        decision = once(spec, stable, ready=10, panic=0.0, state=state, now=NOW + t)
        state = decision.state
        seen.append((decision.desired_replicas, decision.reason))
    assert seen == [
        (10, Reason.STABLE),
        (10, Reason.SCALE_DOWN_DELAY),
        (10, Reason.SCALE_DOWN_DELAY),
        (10, Reason.SCALE_DOWN_DELAY),
        (10, Reason.SCALE_DOWN_DELAY),
        (3, Reason.SCALE_DOWN_DELAY),  # the 10 at t=0 has left (t-10, t]; the 3 at t=4 holds
        (3, Reason.SCALE_DOWN_DELAY),
        (1, Reason.STABLE),
    ]
    assert len(state.recent) == 5


def test_no_delay_keeps_no_history() -> None:
    assert once(ScalingSpec(), 70.0, ready=1).state.recent == ()


@pytest.mark.parametrize(
    ("last_demand", "now", "ready", "min_scale", "expected", "reason"),
    [
        (990.0, 1000.0, 1, 0, 1, Reason.GRACE_PERIOD),
        (990.0, 1019.9, 1, 0, 1, Reason.GRACE_PERIOD),
        (990.0, 1020.0, 1, 0, 0, Reason.SCALE_TO_ZERO),
        (None, 29.0, 1, 0, 1, Reason.GRACE_PERIOD),  # never any demand: counted from the start
        (None, 30.0, 1, 0, 0, Reason.SCALE_TO_ZERO),
        (990.0, 1000.0, 0, 0, 0, Reason.AT_ZERO),
        (0.0, 5000.0, 1, 1, 1, Reason.MIN_SCALE),
    ],
)
def test_scale_to_zero_waits_for_the_grace_period(
    last_demand: float | None, now: float, ready: int, min_scale: int, expected: int, reason: str
) -> None:
    state = ScalerState(started=0.0, initialized=True, last_demand=last_demand)
    decision = once(ScalingSpec(min_scale=min_scale), 0.0, ready, state=state, now=now)
    assert (decision.desired_replicas, decision.reason) == (expected, reason)
    assert decision.state.last_demand == (now if expected and min_scale else last_demand)


def test_demand_is_remembered() -> None:
    assert once(ScalingSpec(), 1.0, ready=1).state.last_demand == NOW


@pytest.mark.parametrize(
    ("spec", "ready", "expected", "reason"),
    [
        (ScalingSpec(), 0, 1, Reason.INITIAL_SCALE),
        (ScalingSpec(initial_scale=3), 0, 3, Reason.INITIAL_SCALE),
        (ScalingSpec(initial_scale=3), 2, 3, Reason.INITIAL_SCALE),
        (ScalingSpec(initial_scale=3, max_scale=2), 0, 2, Reason.INITIAL_SCALE),
        (ScalingSpec(initial_scale=3), 3, KEEP, Reason.NO_DATA),
        (ScalingSpec(initial_scale=0), 0, KEEP, Reason.NO_DATA),
        (ScalingSpec(initial_scale=0, min_scale=1), 0, 1, Reason.INITIAL_SCALE),
    ],
)
def test_initial_scale_before_the_first_data(
    spec: ScalingSpec, ready: int, expected: int, reason: str
) -> None:
    decision = decide(spec, ScalerState(), None, ready, NOW)
    assert (decision.desired_replicas, decision.reason) == (expected, reason)
    assert decision.state.initialized is (expected == KEEP)


def test_initial_scale_is_a_floor_until_reached() -> None:
    spec = ScalingSpec(initial_scale=3)
    waiting = decide(spec, ScalerState(), Aggregates(0.0, 0.0), 1, NOW)
    assert (waiting.desired_replicas, waiting.reason) == (3, Reason.INITIAL_SCALE)
    reached = decide(spec, waiting.state, Aggregates(0.0, 0.0), 3, NOW + 2)
    assert reached.state.initialized
    assert (reached.desired_replicas, reached.reason) == (1, Reason.SCALE_DOWN_LIMIT)


def test_no_data_for_less_than_a_stable_window_keeps_the_scale() -> None:
    state = ScalerState(started=0.0, initialized=True, last_data=NOW - 60.0)
    decision = decide(ScalingSpec(), state, None, 4, NOW)
    assert (decision.desired_replicas, decision.reason) == (KEEP, Reason.NO_DATA)
    assert decision.observed_stable is None


@pytest.mark.parametrize(
    ("spec", "ready", "waiting", "expected", "reason"),
    [
        (ScalingSpec(), 4, 0, 0, Reason.NO_DATA_TIMEOUT),
        (ScalingSpec(min_scale=2), 4, 0, 2, Reason.NO_DATA_TIMEOUT),
        (ScalingSpec(), 4, 3, KEEP, Reason.NO_DATA),  # requests wait: never give up on it
        (ScalingSpec(), 0, 0, KEEP, Reason.NO_DATA),  # at zero nobody reports
    ],
)
def test_no_data_for_longer_than_the_stable_window_lets_the_replicas_go(
    spec: ScalingSpec, ready: int, waiting: int, expected: int, reason: str
) -> None:
    state = ScalerState(started=0.0, initialized=True, last_data=NOW - 60.5, panic_since=NOW - 90)
    decision = decide(spec, state, None, ready, NOW, waiting=waiting)
    assert (decision.desired_replicas, decision.reason) == (expected, reason)
    if expected != KEEP:
        assert not decision.panic


def test_a_revision_that_never_reported_goes_a_stable_window_after_its_first_decision() -> None:
    held = decide(ScalingSpec(), RUNNING, None, 1, 60.0)
    assert held.desired_replicas == KEEP
    assert decide(ScalingSpec(), RUNNING, None, 1, 60.5).desired_replicas == 0


def test_data_stamps_the_last_time_it_was_seen() -> None:
    decision = decide(ScalingSpec(), RUNNING, Aggregates(1.0, 1.0), 1, NOW)
    assert decision.state.last_data == NOW


def test_negative_waiting_is_refused() -> None:
    with pytest.raises(ValueError, match="waiting: must be >= 0"):
        decide(ScalingSpec(), RUNNING, None, 1, NOW, waiting=-1)


@pytest.mark.parametrize(
    ("spec", "ready", "panic", "expected"),
    [
        (ScalingSpec(), 3, 50.0, 50.0),  # 3 * 100 - 200 - 50
        (ScalingSpec(), 3, 50.5, 49.0),  # floored
        (ScalingSpec(), 1, 10.0, -110.0),
        (ScalingSpec(), 0, 0.0, -200.0),
        (ScalingSpec(container_concurrency=10, target_burst_capacity=15.0), 4, 12.0, 13.0),
        (ScalingSpec(metric="rps", target_burst_capacity=100.0), 2, 150.0, 150.0),
        (ScalingSpec(target_burst_capacity=0.0), 5, 10.0, 0.0),
        (ScalingSpec(target_burst_capacity=-1.0), 50, 0.0, -1.0),
    ],
)
def test_excess_burst_capacity(
    spec: ScalingSpec, ready: int, panic: float, expected: float
) -> None:
    decision = once(spec, 1.0, ready, panic=panic)
    assert decision.excess_burst_capacity == expected


def test_excess_burst_capacity_without_data_counts_no_load() -> None:
    assert decide(ScalingSpec(), RUNNING, None, 3, NOW).excess_burst_capacity == 100.0


def test_a_metric_window_and_its_averages_decide_alike() -> None:
    window = MetricWindow()
    for t in range(940, 1001):
        window.record(Observation(float(t), 100.0, 0.0, "p1"))
        window.record(Observation(float(t), 40.0, 0.0, "p2"))
    spec = ScalingSpec()
    from_window = decide(spec, RUNNING, window, 2, NOW)
    from_averages = decide(spec, RUNNING, Aggregates(140.0, 140.0), 2, NOW)
    assert from_window == from_averages
    assert (from_window.desired_replicas, from_window.observed_stable) == (2, 140.0)


def test_invalid_spec_is_refused_with_every_problem() -> None:
    spec = ScalingSpec(min_scale=-1, max_scale_down_rate=1.0)
    with pytest.raises(ValueError, match=r"invalid scaling spec: scale\.min: .*; scale\.maxScale"):
        decide(spec, RUNNING, None, 0, NOW)


def test_negative_ready_replicas_are_refused() -> None:
    with pytest.raises(ValueError, match="ready_replicas: must be >= 0; got -1"):
        decide(ScalingSpec(), RUNNING, None, -1, NOW)
