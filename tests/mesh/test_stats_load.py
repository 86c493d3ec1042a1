"""Time-weighted concurrency replayed on a fake clock (Knative queue-proxy style)."""

from __future__ import annotations

import pytest

from fnmesh.platform.mesh.stats.load import ConcurrencyIntegral


def test_an_idle_interval_averages_zero() -> None:
    load = ConcurrencyIntegral(0.0)
    sample = load.sample(1.0)
    assert (sample.start, sample.end, sample.concurrency) == (0.0, 1.0, 0.0)


def test_requests_count_for_the_time_they_were_in_flight() -> None:
    load = ConcurrencyIntegral(0.0)
    load.arrived(0.0)  # one request during the whole second
    load.arrived(0.25)  # a second one for half of it
    load.departed(0.75)
    sample = load.sample(1.0)
    assert sample.concurrency == pytest.approx(1.5)
    assert load.in_flight == 1


def test_a_long_request_counts_in_every_interval_it_spans() -> None:
    load = ConcurrencyIntegral(10.0)
    load.arrived(10.5)
    assert load.sample(11.0).concurrency == pytest.approx(0.5)
    assert load.sample(12.0).concurrency == pytest.approx(1.0)
    load.departed(12.25)
    assert load.sample(13.0).concurrency == pytest.approx(0.25)
    assert load.sample(14.0).concurrency == 0.0


def test_short_bursts_are_weighted_by_time_not_by_count() -> None:
    load = ConcurrencyIntegral(0.0)
    for i in range(100):  # 100 requests of 1 ms each, one after the other
        load.arrived(i / 100)
        load.departed(i / 100 + 0.001)
    assert load.sample(1.0).concurrency == pytest.approx(0.1)


def test_uneven_intervals_divide_by_their_own_length() -> None:
    load = ConcurrencyIntegral(0.0)
    load.arrived(0.0)
    load.arrived(0.0)
    sample = load.sample(0.1)
    assert sample.interval == pytest.approx(0.1)
    assert sample.concurrency == pytest.approx(2.0)


def test_a_zero_length_interval_reports_what_is_in_flight() -> None:
    load = ConcurrencyIntegral(5.0)
    load.arrived(5.0)
    assert load.sample(5.0).concurrency == 1.0
