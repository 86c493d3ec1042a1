"""The token bucket that bounds what is taken from a replica's output, on a fake clock."""

import pytest

from fnmesh.platform.runtime.local.outputrate import OutputLimits, OutputRate

LIMITS = OutputLimits(lines_per_second=10, bytes_per_second=20_000, max_line_bytes=1000)


def test_a_burst_up_to_one_seconds_allowance_is_taken_then_no_more() -> None:
    rate = OutputRate(LIMITS)
    assert rate.take(100.0, [b"x"] * 25) == 10
    assert rate.take(100.0, [b"x"]) == 0
    assert rate.empty(100.0)


def test_lines_come_back_with_time_at_the_limit_and_no_faster() -> None:
    rate = OutputRate(LIMITS)
    rate.take(0.0, [b"x"] * 10)
    assert rate.take(0.5, [b"x"] * 10) == 5
    assert rate.take(0.5, [b"x"]) == 0
    assert rate.take(60.0, [b"x"] * 100) == 10  # an idle minute refills one second, not sixty


def test_bytes_bound_what_is_taken_as_well_as_lines() -> None:
    rate = OutputRate(LIMITS)
    # 999 bytes + its newline each: 20 lines' worth of bytes, but only 10 lines a second.
    big = b"b" * 999
    assert rate.take(0.0, [big] * 3) == 3
    rate = OutputRate(
        OutputLimits(lines_per_second=1000, bytes_per_second=2000, max_line_bytes=999)
    )
    assert rate.take(0.0, [big] * 3) == 2
    assert rate.take(0.25, [big]) == 0  # 500 bytes back: not enough for a 1000-byte line
    assert rate.take(0.5, [big]) == 1


def test_lines_are_taken_in_order_up_to_the_first_that_does_not_fit() -> None:
    rate = OutputRate(
        OutputLimits(lines_per_second=100, bytes_per_second=1001, max_line_bytes=1000)
    )
    assert rate.take(0.0, [b"a" * 10, b"b" * 995, b"c"]) == 1


def test_a_clock_that_goes_back_refills_nothing() -> None:
    rate = OutputRate(LIMITS)
    rate.take(10.0, [b"x"] * 10)
    assert rate.take(5.0, [b"x"]) == 0
    assert rate.take(10.5, [b"x"] * 8) == 5


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"lines_per_second": 0}, "lines_per_second must be at least 1"),
        ({"bytes_per_second": 100}, "bytes_per_second must be at least 16385"),
    ],
)
def test_limits_that_would_take_nothing_are_refused(kwargs: dict[str, int], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        OutputLimits(**kwargs)
