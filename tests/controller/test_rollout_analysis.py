"""The canary analysis as timelines on a fake clock: each row is one look at the rollout."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rolloutkit import CANARY, Sample, erroring, healthy

from fnmesh.platform.controller.rollout import analyse, check, due_in, start, weights
from fnmesh.platform.model import TrafficTarget

Row = tuple[float, Sample | None, int, str, int]  # time, sample, weight, phase, failed checks


def replay(rows: list[Row], spec=CANARY):  # type: ignore[no-untyped-def]
    state = start("hello-00002", "hello-00001", spec, 0.0)
    assert (state.weight, state.phase) == (spec.step_weight, "Progressing")
    for at, sample, weight, phase, failed in rows:
        state = analyse(spec, state, sample, at)
        assert (state.weight, state.phase, state.failed_checks) == (weight, phase, failed), (
            at,
            state,
        )
    return state


def test_a_healthy_canary_walks_the_steps_and_is_promoted() -> None:
    state = replay(
        [
            (10.0, healthy(), 10, "Progressing", 0),  # not an interval yet: nothing happens
            (30.0, healthy(), 20, "Progressing", 0),
            (45.0, healthy(), 20, "Progressing", 0),
            (60.0, healthy(), 30, "Progressing", 0),
            (90.0, healthy(), 40, "Progressing", 0),
            (120.0, healthy(), 50, "Progressing", 0),  # maxWeight reached
            (150.0, healthy(), 100, "Promoted", 0),  # one more passing check promotes
            (999.0, erroring(0.5), 100, "Promoted", 0),  # over: metrics no longer matter
        ]
    )
    assert state.reason == "Promoted"
    assert weights(state) == [TrafficTarget("hello-00002", 100)]


def test_five_percent_errors_roll_back_after_threshold_failed_checks() -> None:
    state = replay(
        [
            (30.0, erroring(0.05), 10, "Progressing", 1),
            (60.0, erroring(0.05), 10, "Progressing", 2),
            (90.0, erroring(0.05), 0, "RolledBack", 3),
            (120.0, healthy(), 0, "RolledBack", 3),
        ]
    )
    assert state.reason == "ChecksFailed"
    assert state.message is not None and "success rate 95.00% is below 99%" in state.message
    assert weights(state) == [TrafficTarget("hello-00001", 100)]


def test_too_few_requests_neither_step_nor_fail() -> None:
    state = replay(
        [
            (30.0, None, 10, "Progressing", 0),  # no reports at all
            (60.0, Sample(19, 0.0, 9000.0), 10, "Progressing", 0),  # all failing, but only 19
            (90.0, Sample(0, None, None), 10, "Progressing", 0),
            (120.0, healthy(20), 20, "Progressing", 0),  # 20 is enough
        ]
    )
    assert state.last_step == 120.0


def test_a_skipped_interval_starts_a_new_one() -> None:
    state = replay([(30.0, None, 10, "Progressing", 0)])
    assert state.reason == "TooFewRequests" and state.last_step == 30.0
    assert analyse(CANARY, state, healthy(), 59.0).weight == 10
    assert analyse(CANARY, state, healthy(), 60.0).weight == 20


def test_p99_over_the_limit_fails_a_check() -> None:
    slow = Sample(500, 1.0, 750.0)
    state = replay(
        [
            (30.0, slow, 10, "Progressing", 1),
            (60.0, healthy(), 20, "Progressing", 1),  # failures count across the rollout
            (90.0, slow, 20, "Progressing", 2),
            (120.0, slow, 0, "RolledBack", 3),
        ]
    )
    assert state.message is not None and "p99 latency 750ms is above 500ms" in state.message


@pytest.mark.parametrize(
    ("sample", "outcome"),
    [
        (Sample(100, 0.99, 500.0), "passed"),  # both limits are inclusive
        (Sample(100, 0.989, 10.0), "failed"),
        (Sample(100, 1.0, 500.1), "failed"),
        (Sample(100, None, None), "passed"),  # no outcome classes or latencies: nothing to fail
        (Sample(19, 0.0, 1e6), "skipped"),
        (None, "skipped"),
    ],
)
def test_check_limits(sample: Sample | None, outcome: str) -> None:
    assert check(CANARY, sample).outcome == outcome


def test_the_limits_come_from_the_spec() -> None:
    strict = replace(CANARY, min_success_rate=99.9, max_latency_p99=0.1, min_requests=0)
    assert check(strict, Sample(1000, 0.998, 50.0)).outcome == "failed"
    assert check(strict, Sample(1000, 0.9995, 150.0)).outcome == "failed"
    assert check(strict, Sample(1, 1.0, 50.0)).outcome == "passed"
    assert check(strict, Sample(0, None, None)).outcome == "skipped"


def test_the_last_step_never_overshoots_max_weight() -> None:
    spec = replace(CANARY, step_weight=20, max_weight=50)
    state = start("b", "a", spec, 0.0)
    for at, weight in ((20.0, 20), (30.0, 40), (60.0, 50)):
        state = analyse(spec, state, healthy(), at)
        assert state.weight == weight
    assert analyse(spec, state, healthy(), 200.0).phase == "Promoted"


def test_one_step_to_max_weight_and_threshold_one() -> None:
    spec = replace(CANARY, step_weight=50, max_weight=50, threshold=1)
    state = start("b", "a", spec, 0.0)
    assert weights(state) == [TrafficTarget("a", 50), TrafficTarget("b", 50)]
    assert analyse(spec, state, erroring(0.02), 30.0).phase == "RolledBack"
    assert analyse(spec, state, healthy(), 30.0).phase == "Promoted"


def test_due_in_says_when_to_look_again() -> None:
    state = start("b", "a", CANARY, 100.0)
    assert due_in(CANARY, state, 100.0) == 30.0
    assert due_in(CANARY, state, 125.0) == 5.0
    assert due_in(CANARY, state, 200.0) == pytest.approx(0.05)
    assert due_in(CANARY, analyse(CANARY, state, healthy(), 900.0), 900.0) == 30.0
    done = replace(state, phase="Promoted")
    assert due_in(CANARY, done, 100.0) is None


def test_a_wall_clock_that_goes_back_does_not_stall_the_rollout() -> None:
    state = replay(
        [
            (30.0, healthy(), 20, "Progressing", 0),
            (60.0, healthy(), 30, "Progressing", 0),
            (-3540.0, healthy(), 40, "Progressing", 0),  # the clock went back an hour: due
            (-3530.0, healthy(), 40, "Progressing", 0),  # then intervals count from there
            (-3510.0, healthy(), 50, "Progressing", 0),
        ]
    )
    assert state.last_step == -3510.0
    assert due_in(CANARY, state, -7200.0) == pytest.approx(0.05)  # back again: look soon
