"""Failure accrual as tables on a fake clock."""

from __future__ import annotations

import pytest

from fnmesh.platform.mesh.outbound.accrual import AccrualSpec, FailureAccrual, State


def accrual(roll: float = 0.0, **spec: float) -> FailureAccrual:
    return FailureAccrual(AccrualSpec(**spec), roll=lambda: roll)  # type: ignore[arg-type]


def fail(breaker: FailureAccrual, key: str, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        breaker.failure(key, now)


def test_seven_consecutive_failures_eject() -> None:
    breaker = accrual()
    fail(breaker, "a", 6)
    assert breaker.state("a", 0.0) is State.CLOSED and breaker.admits("a", 0.0)
    assert not breaker.any_ejected
    fail(breaker, "a", 1)
    assert breaker.state("a", 0.0) is State.OPEN and not breaker.admits("a", 0.0)
    assert breaker.any_ejected
    assert breaker.admits("b", 0.0)  # others are unaffected


def test_a_success_resets_the_count() -> None:
    breaker = accrual()
    fail(breaker, "a", 6)
    breaker.success("a", 0.0)
    fail(breaker, "a", 6)
    assert breaker.state("a", 0.0) is State.CLOSED


@pytest.mark.parametrize(
    ("ejections", "low", "high"),
    [(1, 1.0, 1.2), (2, 2.0, 2.4), (3, 4.0, 4.8), (6, 32.0, 38.4), (7, 60.0, 72.0), (30, 60, 72)],
)
def test_backoff_doubles_up_to_the_maximum_within_the_jitter(
    ejections: int, low: float, high: float
) -> None:
    spec = AccrualSpec()
    assert spec.backoff(ejections, 0.0) == pytest.approx(low)
    assert spec.backoff(ejections, 0.999999) == pytest.approx(high, rel=1e-5)
    assert low <= spec.backoff(ejections, 0.5) <= high


def test_after_the_backoff_exactly_one_probe_goes() -> None:
    breaker = accrual(roll=0.5)  # backoff 1 s * (1 + 0.2 * 0.5) = 1.1 s
    fail(breaker, "a", 7, now=10.0)
    assert not breaker.admits("a", 11.0)
    assert breaker.probe_in(["a"], 11.0) == pytest.approx(0.1)
    assert breaker.admits("a", 11.1)
    assert breaker.state("a", 11.1) is State.HALF_OPEN
    assert breaker.dispatch("a", 11.1) is True  # the probe
    assert not breaker.admits("a", 11.2)  # no second request while the probe is out
    assert breaker.dispatch("a", 11.2) is False
    assert breaker.probe_in(["a"], 11.2) == 0.0
    breaker.success("a", 11.3, probe=True)
    assert breaker.state("a", 11.3) is State.CLOSED and not breaker.any_ejected


def test_a_failed_probe_ejects_again_for_longer() -> None:
    breaker = accrual()
    fail(breaker, "a", 7, now=0.0)  # out until 1 s
    assert breaker.dispatch("a", 1.0) is True
    breaker.failure("a", 1.5, probe=True)  # out for 2 s: until 3.5
    assert not breaker.admits("a", 3.4)
    assert breaker.dispatch("a", 3.5) is True
    breaker.failure("a", 3.5, probe=True)  # 4 s: until 7.5
    assert not breaker.admits("a", 7.4) and breaker.admits("a", 7.5)
    assert breaker.dispatch("a", 7.5) is True
    breaker.success("a", 7.6, probe=True)
    fail(breaker, "a", 7, now=8.0)  # a success in between: the backoff starts over at 1 s
    assert breaker.admits("a", 9.0)


def test_outcomes_of_requests_sent_before_the_ejection_do_not_count() -> None:
    breaker = accrual()
    fail(breaker, "a", 7)
    breaker.success("a", 0.5)  # a slow request that was already out
    assert breaker.state("a", 0.5) is State.OPEN
    breaker.failure("a", 0.6)
    assert breaker.admits("a", 1.0)  # the backoff did not grow


def test_an_abandoned_probe_lets_another_go() -> None:
    breaker = accrual()
    fail(breaker, "a", 7)
    assert breaker.dispatch("a", 1.0)
    breaker.abandon("a", probe=True)
    assert breaker.admits("a", 1.0) and breaker.dispatch("a", 1.0)


def test_forgetting_an_ejected_endpoint_clears_it() -> None:
    breaker = accrual()
    fail(breaker, "a", 7)
    fail(breaker, "b", 3)
    breaker.forget({"b"})
    assert not breaker.any_ejected and breaker.state("a", 0.0) is State.CLOSED
    fail(breaker, "b", 4)
    assert breaker.state("b", 0.0) is State.OPEN


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="threshold 0"):
        AccrualSpec(threshold=0)
    with pytest.raises(ValueError, match="min_backoff"):
        AccrualSpec(min_backoff=10, max_backoff=5)
