import math
from collections.abc import Callable

import pytest

from fnmesh.autoscaler import Aggregates, MetricWindow, Observation


def report(time: float, concurrency: float, source: str = "a", rps: float = 0.0) -> Observation:
    return Observation(time=time, concurrency=concurrency, rps=rps, source=source)


def test_no_reports_is_no_data() -> None:
    window = MetricWindow()
    assert window.averages("concurrency", 60.0, 6.0, now=100.0) is None
    assert window.total("concurrency", 100) is None


def test_sources_are_summed_within_a_second() -> None:
    window = MetricWindow()
    window.extend([report(100.2, 3.0, "a"), report(100.7, 4.5, "b"), report(100.9, 0.5, "act")])
    assert window.total("concurrency", 100) == pytest.approx(8.0)
    assert window.averages("concurrency", 60.0, 6.0, now=100.9) == Aggregates(8.0, 8.0)


def test_a_source_reporting_twice_in_a_second_is_averaged_not_doubled() -> None:
    window = MetricWindow()
    window.extend([report(100.05, 4.0, "a"), report(100.95, 6.0, "a"), report(100.5, 1.0, "b")])
    assert window.total("concurrency", 100) == pytest.approx(6.0)


def test_seconds_without_reports_do_not_count_as_zero() -> None:
    window = MetricWindow()
    window.extend([report(100, 10.0), report(101, 20.0), report(105, 30.0)])
    # Seconds 102-104 had no reports: the mean is over the three seconds that did.
    assert window.average("concurrency", 60.0, now=105) == pytest.approx(20.0)


def test_reported_zeros_do_count() -> None:
    window = MetricWindow()
    window.extend(report(float(t), 0.0 if t % 2 else 10.0) for t in range(100, 110))
    assert window.average("concurrency", 60.0, now=109) == pytest.approx(5.0)


def test_stable_and_panic_windows_cover_the_last_seconds_up_to_now() -> None:
    window = MetricWindow()
    window.extend(report(float(t), 1.0) for t in range(54))
    window.extend(report(float(t), 10.0) for t in range(54, 60))
    averages = window.averages("concurrency", 60.0, 6.0, now=59.5)
    assert averages is not None
    assert averages.stable == pytest.approx(1.9)
    assert averages.panic == pytest.approx(10.0)
    # One second later the oldest 1.0 has left the stable window (now 1..60 minus 60 unseen).
    later = window.averages("concurrency", 60.0, 6.0, now=60.0)
    assert later is not None
    assert later.stable == pytest.approx((53 * 1.0 + 6 * 10.0) / 59)
    assert later.panic == pytest.approx(10.0)


def test_the_current_second_counts_at_once() -> None:
    window = MetricWindow()
    window.extend(report(float(t), 0.0) for t in range(59))
    window.record(report(59.1, 12.0, "activator"))
    averages = window.averages("concurrency", 60.0, 6.0, now=59.2)
    assert averages is not None
    assert averages.panic == pytest.approx(2.0)


def test_partial_window_at_the_start() -> None:
    window = MetricWindow()
    window.extend(report(float(t), 6.0) for t in range(100, 103))
    assert window.averages("concurrency", 60.0, 6.0, now=102) == Aggregates(6.0, 6.0)


def test_panic_falls_back_to_stable_when_the_panic_window_is_empty() -> None:
    window = MetricWindow()
    window.extend([report(100, 4.0), report(101, 8.0)])
    assert window.averages("concurrency", 60.0, 6.0, now=130) == Aggregates(6.0, 6.0)


def test_data_older_than_the_window_is_not_seen() -> None:
    window = MetricWindow()
    window.record(report(100, 4.0))
    assert window.averages("concurrency", 60.0, 6.0, now=159) == Aggregates(4.0, 4.0)
    assert window.averages("concurrency", 60.0, 6.0, now=160) is None


def test_reports_after_now_are_not_seen() -> None:
    window = MetricWindow()
    window.extend([report(100, 4.0), report(101, 100.0)])
    assert window.averages("concurrency", 60.0, 6.0, now=100.5) == Aggregates(4.0, 4.0)


def test_rps_is_summed_and_averaged_the_same_way() -> None:
    window = MetricWindow()
    for t in range(100, 104):
        window.record(report(t, 1.0, "a", rps=100.0))
        window.record(report(t, 1.0, "b", rps=50.0 if t < 102 else 150.0))
    averages = window.averages("rps", 60.0, 2.0, now=103)
    assert averages is not None
    assert averages.stable == pytest.approx(200.0)
    assert averages.panic == pytest.approx(250.0)


def test_old_buckets_are_dropped_and_late_reports_ignored() -> None:
    window = MetricWindow(retention=10.0)
    window.extend(report(float(t), 1.0) for t in range(100, 130))
    assert len(window) == 10
    assert window.total("concurrency", 119) is None
    assert window.total("concurrency", 120) == 1.0
    window.record(report(110.0, 50.0, "late"))
    assert len(window) == 10
    assert window.total("concurrency", 110) is None
    window.record(report(125.0, 3.0, "late"))
    assert window.total("concurrency", 125) == pytest.approx(4.0)


def test_resize_keeps_the_newest_seconds() -> None:
    window = MetricWindow(retention=60.0)
    window.extend(report(float(t), 1.0) for t in range(100, 160))
    window.resize(6.0)
    assert (len(window), window.retention) == (6, 6.0)
    assert window.total("concurrency", 154) == 1.0
    with pytest.raises(ValueError, match=r"window: 60\.0 s is longer than the 6 s"):
        window.averages("concurrency", 60.0, 6.0, now=160)


def test_drop_before() -> None:
    window = MetricWindow()
    window.extend(report(float(t), 1.0) for t in range(100, 110))
    window.drop_before(105.5)
    assert len(window) == 5
    assert window.total("concurrency", 104) is None


@pytest.mark.parametrize(
    ("observation", "message"),
    [
        (
            Observation(100, -1.0, 0.0, "p1"),
            "observation.concurrency: must be a finite number >= 0",
        ),
        (Observation(100, 1.0, math.nan, "p1"), "observation.rps: must be a finite number >= 0"),
        (Observation(math.inf, 1.0, 0.0, "p1"), "observation.time: must be a finite number; got"),
    ],
)
def test_bad_observations_are_refused_with_the_field(
    observation: Observation, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        MetricWindow().record(observation)
    assert "'p1'" in str(raised.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: MetricWindow(retention=0.0), "retention: must be a positive number"),
        (lambda: MetricWindow().average("cpu", 60.0, 0.0), "metric: must be one of"),
        (lambda: MetricWindow().average("rps", -1.0, 0.0), "window: must be a positive number"),
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
