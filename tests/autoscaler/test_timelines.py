"""Load timelines replayed second by second on a fake clock, deciding every 2 s."""

import itertools

import pytest
from scaling_replay import Replay, Tick, first

from fnmesh.autoscaler import KEEP, Reason, ScalingSpec

START = 1000.0


def desired(ticks: list[Tick]) -> list[int]:
    return [tick.desired for tick in ticks]


@pytest.mark.parametrize(
    ("demand", "expected"),
    [(10.0, 1), (70.0, 1), (71.0, 2), (140.0, 2), (350.0, 5), (1000.0, 15), (3500.0, 50)],
)
def test_steady_demand_settles_on_ceil_of_demand_over_target(demand: float, expected: int) -> None:
    replay = Replay(ScalingSpec(), ready=1)
    replay.run(200, concurrency=demand)
    settled = replay.run(60, concurrency=demand)
    assert set(desired(settled)) == {expected}
    assert not any(tick.decision.panic for tick in settled)


def test_sudden_step_panics_at_once_and_calms_after_a_stable_window() -> None:
    replay = Replay(ScalingSpec(), ready=1)
    calm = replay.run(80, concurrency=70.0)
    assert set(desired(calm)) == {1}
    assert not any(tick.decision.panic for tick in calm)

    surge = replay.run(200, concurrency=700.0)
    entered = surge[0]
    assert entered.decision.panic
    assert entered.decision.state.panic_since == START + 80
    assert entered.desired >= 3  # panic window: (5 * 70 + 700) / 6 = 175 -> 3
    assert first(surge, lambda tick: tick.desired == 10).time <= START + 80 + 6

    last_over = max(tick.decision.state.last_over_threshold or 0.0 for tick in surge)
    still = [tick for tick in surge if tick.time <= last_over + 60]
    after = [tick for tick in surge if tick.time > last_over + 60]
    assert all(tick.decision.panic for tick in still)
    assert not any(tick.decision.panic for tick in after)
    assert after[0].decision.state.max_panic_replicas == 0
    assert set(desired(after)) == {10}  # the demand is still there: stable agrees


def test_no_scale_down_while_panicking() -> None:
    replay = Replay(ScalingSpec(), ready=1)
    replay.run(80, concurrency=70.0)
    spike = replay.run(10, concurrency=1400.0)
    peak = max(desired(spike))
    assert peak == 20
    after = replay.run(200, concurrency=70.0)
    panicking = [tick for tick in spike + after if tick.decision.panic]
    assert desired(panicking) == sorted(desired(panicking))  # never down
    assert desired(panicking)[-1] == peak
    calm = [tick for tick in after if not tick.decision.panic]
    assert calm[0].time > panicking[-1].time
    assert calm[0].time - (panicking[-1].decision.state.last_over_threshold or 0.0) > 60
    assert desired(calm)[-1] == 1
    for before, now in itertools.pairwise(desired(calm)):
        assert now >= before // 2  # scale-down rate 2


def test_scale_up_and_down_rates_limit_each_decision() -> None:
    spec = ScalingSpec(max_scale_up_rate=2.0, max_scale_down_rate=2.0)
    replay = Replay(spec, ready=1)
    replay.run(20, concurrency=35.0)
    up = replay.run(30, concurrency=1400.0)
    assert desired(up)[:6] == [2, 4, 8, 16, 20, 20]
    replay.run(120, concurrency=1400.0)
    down = replay.run(150, concurrency=0.0)
    counts = [replay.ticks[-len(down) - 1].desired, *(n for n in desired(down) if n != KEEP)]
    for before, now in itertools.pairwise(counts):
        assert now >= before // 2
    assert 20 in counts
    assert counts[-1] == 0


def test_activation_scale_from_zero_holds_while_there_is_demand() -> None:
    replay = Replay(ScalingSpec(activation_scale=3, initial_scale=0), ready=0)
    quiet = replay.run(10)  # nothing reports while at zero
    assert set(desired(quiet)) == {KEEP}

    woken = replay.run(30, concurrency=1.0)
    assert woken[0].ready == 0
    assert (woken[0].desired, woken[0].decision.reason) == (3, Reason.ACTIVATION_SCALE)
    assert set(desired(woken)) == {3}
    assert first(replay.run(200), lambda tick: tick.desired == 0).decision.reason == (
        Reason.SCALE_TO_ZERO
    )


def test_default_activation_from_zero_is_one_replica() -> None:
    replay = Replay(ScalingSpec(initial_scale=0), ready=0)
    assert set(desired(replay.run(10))) == {KEEP}
    woken = replay.run(10, concurrency=1.0)
    assert desired(woken)[0] == 1


def test_min_scale_keeps_replicas_through_idleness() -> None:
    replay = Replay(ScalingSpec(min_scale=2), ready=0)
    ticks = replay.run(300)
    assert desired(ticks)[0] == 2
    assert set(desired(ticks[1:])) == {2}
    assert ticks[-1].decision.reason == Reason.MIN_SCALE


def test_max_scale_caps_a_surge() -> None:
    replay = Replay(ScalingSpec(max_scale=4), ready=1)
    ticks = replay.run(60, concurrency=5000.0)
    assert max(desired(ticks)) == 4
    assert ticks[-1].decision.panic
    assert ticks[-1].decision.reason == Reason.MAX_SCALE


def first_decrease(delay: float) -> Tick:
    replay = Replay(ScalingSpec(scale_down_delay=delay), ready=10)
    replay.run(100, concurrency=700.0)
    assert replay.ready == 10
    return first(replay.run(200, concurrency=70.0), lambda tick: tick.desired < 10)


def test_scale_down_delay_postpones_each_decrease() -> None:
    undelayed = first_decrease(0.0)
    delayed = first_decrease(30.0)
    # The last 10 was decided at undelayed.time - 2; it leaves the 30 s window 30 s later.
    assert delayed.time == undelayed.time - 2 + 30
    assert delayed.decision.reason == Reason.SCALE_DOWN_DELAY


def test_grace_period_before_zero() -> None:
    replay = Replay(ScalingSpec(), ready=1)
    replay.run(30, concurrency=35.0)  # last request in second START + 29
    idle = replay.run(200)
    # The stable window still holds load until START + 29 + 59; then 30 s of grace.
    last_wanted = max(tick.time for tick in idle if tick.decision.observed_stable)
    assert last_wanted == START + 88
    holding = [tick for tick in idle if last_wanted < tick.time < last_wanted + 30]
    assert {(tick.desired, tick.decision.reason) for tick in holding} == {(1, "grace-period")}
    zero = first(idle, lambda tick: tick.desired == 0)
    assert zero.time == last_wanted + 30
    assert zero.decision.reason == Reason.SCALE_TO_ZERO
    later = [tick for tick in idle if tick.time > zero.time]
    assert set(desired(later)) <= {0, KEEP}
    assert desired(later)[-1] == KEEP  # nobody reports at zero: the window runs dry


def test_zero_and_back() -> None:
    replay = Replay(ScalingSpec(), ready=1)
    replay.run(150, concurrency=0.0)
    assert replay.ready == 0
    back = replay.run(20, concurrency=140.0)  # queued at the activator
    assert back[0].ready == 0
    assert back[0].desired == 2
    assert back[0].decision.panic  # 2 wanted over 0 (counted as 1) ready
    assert back[0].decision.excess_burst_capacity < 0


def test_unused_new_revision_goes_to_zero_after_the_grace_period() -> None:
    replay = Replay(ScalingSpec(), ready=0)
    ticks = replay.run(60)
    assert ticks[0].decision.reason == Reason.INITIAL_SCALE
    zero = first(ticks, lambda tick: tick.desired == 0)
    assert zero.time == START + 30


def test_rps_metric() -> None:
    replay = Replay(ScalingSpec(metric="rps"), ready=1)
    replay.run(200, concurrency=1.0, rps=700.0)
    settled = replay.run(60, concurrency=1.0, rps=700.0)
    assert set(desired(settled)) == {5}  # 700 / (200 * 0.7)
    assert settled[-1].decision.observed_stable == pytest.approx(700.0)


def test_replicas_whose_reports_stop_go_to_zero_a_stable_window_later() -> None:
    replay = Replay(ScalingSpec(), ready=1)
    replay.run(30, concurrency=35.0)  # last report in second START + 29
    replay.silent = True  # the reporter breaks; the replica stays up
    quiet = replay.run(200)
    held = [tick for tick in quiet if tick.desired == KEEP]
    assert held and {tick.decision.reason for tick in held} == {Reason.NO_DATA}
    gone = first(quiet, lambda tick: tick.desired == 0)
    assert gone.decision.reason == Reason.NO_DATA_TIMEOUT
    last_data = max(tick.time for tick in replay.ticks if tick.decision.observed_stable)
    assert 60 < gone.time - last_data <= 60 + 2  # the first tick past the stable window
    assert replay.ready == 0


def test_silent_replicas_are_kept_while_requests_wait_in_the_activator() -> None:
    replay = Replay(ScalingSpec(), ready=2)
    replay.run(30, concurrency=70.0)
    replay.silent, replay.waiting = True, 1
    quiet = replay.run(200)
    assert 0 not in desired(quiet)
    assert set(desired(quiet[-50:])) == {KEEP}  # the window ran dry long ago
    assert replay.ready >= 1
    replay.waiting = 0
    assert first(replay.run(10), lambda tick: tick.desired == 0).decision.reason == (
        Reason.NO_DATA_TIMEOUT
    )
