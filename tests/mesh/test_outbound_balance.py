"""P2C over peak EWMA, on a fake clock and loaded dice."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle

import pytest

from fnmesh.platform.mesh.outbound.balance import Balancer


@dataclass(frozen=True)
class Ep:
    name: str


def dice(*rolls: float) -> Callable[[], float]:
    values = cycle(rolls)
    return lambda: next(values)


def warmed(latencies: dict[str, float], roll: Callable[[], float], now: float = 0.0) -> Balancer:
    balancer = Balancer(roll=roll)
    for name, rtt in latencies.items():
        balancer.finish(balancer.start(name, now), rtt, now)
    return balancer


A, B, C = Ep("a"), Ep("b"), Ep("c")


@pytest.mark.parametrize(
    ("rolls", "expected"),
    [
        # first draw: int(r1 * 3); second: int(r2 * 2), moved up by one if it reaches the first
        ((0.0, 0.0), "b"),  # a vs b: b is cheaper
        ((0.0, 0.9), "c"),  # a vs c: c is cheapest
        ((0.5, 0.0), "b"),  # b vs a
        ((0.9, 0.0), "c"),  # c vs a
        ((0.9, 0.9), "c"),  # c vs b
        ((0.5, 0.9), "c"),  # b vs c
    ],
)
def test_the_cheaper_of_two_random_endpoints_wins(
    rolls: tuple[float, float], expected: str
) -> None:
    balancer = warmed({"a": 0.300, "b": 0.100, "c": 0.010}, dice(*rolls))
    assert balancer.pick([A, B, C], 0.0) == Ep(expected)


def test_the_two_draws_are_distinct_and_cover_all_pairs() -> None:
    seen = set()
    for first in (0.0, 0.4, 0.9):
        for second in (0.0, 0.9):
            balancer = Balancer(roll=dice(first, second))
            # equal costs: the first draw wins, so the pick tells which was drawn first
            seen.add(balancer.pick([A, B, C], 0.0))
    assert seen == {A, B, C}


def test_pending_requests_raise_the_cost() -> None:
    balancer = warmed({"a": 0.010, "b": 0.012}, dice(0.0, 0.0))
    assert balancer.pick([A, B], 0.0) == A
    balancer.start("a", 0.0)  # one in flight: cost 0.010 * 2 > 0.012
    assert balancer.pick([A, B], 0.0) == B
    assert balancer.cost("a", 0.0) == pytest.approx(0.020)


def test_a_slower_sample_lifts_the_estimate_at_once() -> None:
    balancer = warmed({"a": 0.010}, dice(0.0))
    balancer.finish(balancer.start("a", 1.0), 0.500, 1.0)
    assert balancer.cost("a", 1.0) == pytest.approx(0.500)


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (0.0, 0.500),  # no time passed: a faster sample has no weight yet
        (10.0, 0.500 * math.exp(-1) + 0.010 * (1 - math.exp(-1))),  # one time constant
        (50.0, 0.500 * math.exp(-5) + 0.010 * (1 - math.exp(-5))),
    ],
)
def test_a_faster_sample_pulls_the_estimate_down_with_the_time_constant(
    elapsed: float, expected: float
) -> None:
    balancer = warmed({"a": 0.500}, dice(0.0))
    balancer.finish(balancer.start("a", elapsed), 0.010, elapsed)
    assert balancer.cost("a", elapsed) == pytest.approx(expected)


def test_an_idle_estimate_decays_so_a_once_slow_endpoint_is_tried_again() -> None:
    balancer = warmed({"slow": 1.0, "fast": 0.010}, dice(0.0, 0.0))
    slow, fast = Ep("slow"), Ep("fast")
    assert balancer.pick([slow, fast], 0.0) == fast
    # the fast one keeps answering in 10 ms; the idle slow one decays as e^(-t/10 s) and is
    # cheaper once below 10 ms, from t = 10 s * ln(100) = 46.05 s on
    for second in range(1, 51):
        balancer.finish(balancer.start("fast", second), 0.010, second)
        assert balancer.pick([slow, fast], second) == (fast if second <= 46 else slow)
    assert balancer.cost("slow", 50.0) == pytest.approx(math.exp(-5))


def test_new_endpoints_start_at_the_default_rtt_until_their_first_response() -> None:
    balancer = Balancer(roll=dice(0.0), default_rtt=0.03)
    assert balancer.cost("new", 5.0) == pytest.approx(0.03)
    balancer.finish(balancer.start("new", 5.0), 0.002, 5.0)
    assert balancer.cost("new", 5.0) == pytest.approx(0.002)


def test_a_failure_never_makes_an_endpoint_look_faster() -> None:
    balancer = warmed({"a": 0.200}, dice(0.0))
    balancer.finish(balancer.start("a", 0.0), 0.001, 0.0, failed=True)  # refused at once
    assert balancer.cost("a", 0.0) == pytest.approx(0.200)
    balancer.finish(balancer.start("a", 0.0), 0.900, 0.0, failed=True)  # slow failure counts
    assert balancer.cost("a", 0.0) == pytest.approx(0.900)


def test_endpoints_not_admitted_are_not_chosen() -> None:
    balancer = warmed({"a": 0.001, "b": 0.5, "c": 0.9}, dice(0.0, 0.0, 0.5, 0.9))
    ejected = {"a"}
    picks = {
        balancer.pick([A, B, C], 0.0, admits=lambda name, now: name not in ejected)
        for _ in range(20)
    }
    assert picks == {B}
    assert balancer.pick([A], 0.0, admits=lambda name, now: False) is None
    assert balancer.pick([], 0.0) is None


def test_tried_endpoints_are_avoided_while_others_are_left() -> None:
    balancer = warmed({"a": 0.001, "b": 0.5}, dice(0.0, 0.0))
    assert balancer.pick([A, B], 0.0) == A
    assert balancer.pick([A, B], 0.0, avoid=["a"]) == B
    assert balancer.pick([A, B], 0.0, avoid=["a", "b"]) == A  # all tried: the best again


def test_pending_ends_with_the_request_and_forget_drops_gone_endpoints() -> None:
    balancer = Balancer(roll=dice(0.0))
    load = balancer.start("a", 0.0)
    assert load.pending == 1
    balancer.finish(load, 0.01, 0.1)
    assert load.pending == 0
    balancer.forget({"b"})
    assert balancer.load("a", 1.0).estimate == pytest.approx(0.03)  # fresh again


def test_bad_settings_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="decay"):
        Balancer(roll=dice(0.0), decay=0)
