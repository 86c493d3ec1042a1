"""The retry budget as tables on a fake clock."""

from __future__ import annotations

import pytest

from fnmesh.platform.mesh.outbound.budget import BudgetSpec, RetryBudget


def drain(budget: RetryBudget, now: float) -> int:
    taken = 0
    while budget.withdraw(now):
        taken += 1
        assert taken < 100_000
    return taken


@pytest.mark.parametrize(
    ("requests", "spec", "retries"),
    [
        (0, BudgetSpec(), 100),  # the floor: 10/s over 10 s
        (1000, BudgetSpec(), 300),  # 20 % of 1000 plus the floor
        (1000, BudgetSpec(min_per_second=0), 200),
        (7, BudgetSpec(min_per_second=0), 1),  # 1.4 retries: one whole
        (1000, BudgetSpec(ratio=0.5, min_per_second=1, ttl=5), 505),
        (1000, BudgetSpec(ratio=0, min_per_second=1), 10),
    ],
)
def test_retries_allowed_are_the_ratio_of_requests_plus_the_floor(
    requests: int, spec: BudgetSpec, retries: int
) -> None:
    budget = RetryBudget(spec)
    for _ in range(requests):
        budget.deposit(100.0)
    assert budget.available(100.0) == pytest.approx(retries, abs=0.99)
    assert drain(budget, 100.0) == retries


def test_deposits_expire_after_the_window() -> None:
    budget = RetryBudget(BudgetSpec(min_per_second=0))
    for _ in range(100):
        budget.deposit(0.0)
    assert budget.available(9.0) == pytest.approx(20)
    assert budget.available(10.0) == 0  # the 0 s bucket left the 10 s window
    for _ in range(50):
        budget.deposit(10.5)
    assert budget.available(19.9) == pytest.approx(10)
    assert budget.available(100.0) == 0


def test_withdrawals_expire_too_so_the_floor_comes_back() -> None:
    budget = RetryBudget(BudgetSpec(min_per_second=1))
    assert drain(budget, 0.0) == 10
    assert drain(budget, 5.0) == 0
    assert drain(budget, 10.0) == 10


def test_a_sliding_window_keeps_the_recent_deposits() -> None:
    budget = RetryBudget(BudgetSpec(min_per_second=0))  # 1 s buckets
    for second in range(20):
        for _ in range(10):
            budget.deposit(second + 0.5)
    # at 19.5 s the window holds the deposits of seconds 10..19: 100 requests -> 20 retries
    assert budget.available(19.5) == pytest.approx(20)


def test_steady_failure_is_held_to_the_ratio() -> None:
    """Every request fails and wants retries: over time, retries stay near 20 %."""
    budget = RetryBudget(BudgetSpec(min_per_second=1))
    requests = retries = 0
    for tick in range(600):  # 60 s at 100 requests per second
        now = tick / 10
        for _ in range(10):
            budget.deposit(now)
            requests += 1
            while retries < 10 * requests and budget.withdraw(now):
                retries += 1
                break
    assert retries <= 0.2 * requests + 1 * 60 + 10
    assert retries >= 0.2 * requests * 0.9


def test_a_clock_stepping_back_is_harmless() -> None:
    budget = RetryBudget(BudgetSpec(min_per_second=0))
    budget.deposit(50.0)
    budget.deposit(49.0)
    for _ in range(3):
        budget.deposit(50.0)
    assert drain(budget, 50.0) == 1


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="ratio"):
        BudgetSpec(ratio=-1)
    with pytest.raises(ValueError, match="ttl"):
        BudgetSpec(ttl=0)
