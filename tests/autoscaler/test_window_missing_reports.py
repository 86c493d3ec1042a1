"""A source missing from a second is counted with its previous value while it is evidently
still reporting, so a still-filling second or timer jitter does not shrink the total."""

import pytest

from fnmesh.autoscaler import MetricWindow, Observation


def report(time: float, concurrency: float, source: str, rps: float = 0.0) -> Observation:
    return Observation(time=time, concurrency=concurrency, rps=rps, source=source)


def steady(window: MetricWindow, sources: int, start: int, end: int) -> None:
    """Every source reports 1.0 each second at its own phase (0.1 s apart)."""
    for second in range(start, end):
        for n in range(sources):
            window.record(report(second + 0.1 * n, 1.0, f"p{n}", rps=2.0))


def test_sources_not_yet_due_in_the_current_second_count_with_their_last_value() -> None:
    window = MetricWindow()
    steady(window, 5, 100, 110)
    window.record(report(110.0, 1.0, "p0", rps=2.0))  # only p0 has reported in second 110 so far
    assert window.total("concurrency", 110) == pytest.approx(1.0)  # without `now`: as reported
    assert window.total("concurrency", 110, now=110.05) == pytest.approx(5.0)
    averages = window.averages("concurrency", 60.0, 1.0, now=110.05)
    assert averages is not None and averages.panic == pytest.approx(5.0)
    assert window.average("rps", 1.0, now=110.05) == pytest.approx(10.0)
    # at 110.25 p1 and p2 (last at 109.1 and 109.2) are overdue: they may have stopped
    assert window.total("concurrency", 110, now=110.25) == pytest.approx(3.0)


def test_an_overdue_source_is_not_carried() -> None:
    window = MetricWindow()
    steady(window, 2, 100, 110)  # p0 at x.0, p1 at x.1
    window.record(report(110.0, 1.0, "p0"))
    # p1 last reported at 109.1: at 110.05 it is due in 0.05 s, at 110.2 it is overdue
    assert window.total("concurrency", 110, now=110.05) == pytest.approx(2.0)
    assert window.total("concurrency", 110, now=110.2) == pytest.approx(1.0)


def test_a_past_second_skipped_by_jitter_counts_the_source() -> None:
    window = MetricWindow()
    window.extend([report(100.5, 2.0, "a"), report(100.999, 3.0, "b")])
    window.extend([report(101.5, 2.0, "a")])  # b's next report came late, at 102.001
    window.extend([report(102.001, 3.0, "b"), report(102.5, 2.0, "a")])
    assert window.total("concurrency", 101) == pytest.approx(5.0)
    assert window.average("concurrency", 3.0, now=102.9) == pytest.approx(5.0)


def test_a_source_that_stopped_is_not_counted_after_it_stopped() -> None:
    window = MetricWindow()
    window.extend([report(100.0, 4.0, "gone"), report(100.0, 1.0, "stays")])
    window.extend([report(101.0, 1.0, "stays"), report(102.0, 1.0, "stays")])
    assert window.total("concurrency", 101) == pytest.approx(1.0)
    assert window.total("concurrency", 102, now=102.5) == pytest.approx(1.0)


def test_seconds_nobody_reported_in_stay_without_data() -> None:
    window = MetricWindow()
    window.extend([report(100.0, 4.0, "a"), report(102.0, 4.0, "a")])
    assert window.total("concurrency", 101) is None
    assert window.total("concurrency", 103, now=103.5) is None


def test_a_report_after_now_does_not_fill_the_second_before_it() -> None:
    window = MetricWindow()
    window.extend([report(100.5, 2.0, "a"), report(100.6, 3.0, "b"), report(101.5, 2.0, "a")])
    window.record(report(102.5, 3.0, "b"))
    # at 101.9 b (last at 100.6) is overdue, and its report at 102.5 has not happened yet
    assert window.total("concurrency", 101, now=101.9) == pytest.approx(2.0)
    assert window.total("concurrency", 101, now=102.9) == pytest.approx(5.0)
