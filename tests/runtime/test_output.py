"""A replica's output as the platform takes it: lines within the rate, the rest counted,
a notice of what was dropped, bounded lines; and a pump that never stops draining."""

from __future__ import annotations

import asyncio
import sys

from fnmesh.platform.runtime.local.logdrops import LogDrops
from fnmesh.platform.runtime.local.outputrate import OutputLimits
from fnmesh.platform.runtime.local.process import NOTICE_STREAM, Output, _pump

LIMITS = OutputLimits(lines_per_second=5, bytes_per_second=20_000, max_line_bytes=100)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def output(limits: OutputLimits = LIMITS) -> tuple[Output, list[tuple[str, str]], LogDrops, Clock]:
    got: list[tuple[str, str]] = []
    drops = LogDrops()
    clock = Clock()
    out = Output(
        "r1", lambda name, stream, line: got.append((stream, line)), limits=limits, drops=drops
    )
    out.clock = clock
    return out, got, drops, clock


def test_whole_lines_are_taken_and_a_partial_one_waits_for_its_end() -> None:
    out, got, _, _ = output()
    out.feed("stdout", b"one\ntw")
    assert got == [("stdout", "one")]
    out.feed("stdout", b"o\nthree")
    out.close("stdout")
    assert got == [("stdout", "one"), ("stdout", "two"), ("stdout", "three")]


def test_streams_keep_their_partial_lines_apart() -> None:
    out, got, _, _ = output()
    out.feed("stdout", b"out-")
    out.feed("stderr", b"err-")
    out.feed("stdout", b"1\n")
    out.feed("stderr", b"2\n")
    assert got == [("stdout", "out-1"), ("stderr", "err-2")]


def test_lines_over_the_rate_are_dropped_counted_and_then_reported() -> None:
    out, got, drops, clock = output()
    out.feed("stdout", b"".join(b"line %d\n" % i for i in range(12)))
    assert [line for _, line in got] == [f"line {i}" for i in range(5)]
    assert drops.lines("rate") == 7
    assert drops.bytes("rate") == 5 * len(b"line 5") + 2 * len(b"line 10")
    out.feed("stdout", b"late\n")  # the budget is spent: counted, not split
    assert drops.lines("rate") == 8
    clock.now += 1.0
    out.feed("stdout", b"later\n")
    assert got[5] == (
        NOTICE_STREAM,
        "8 lines (48 bytes) of output dropped: over the limit of 5 lines or 20000 bytes per second",
    )
    assert got[6] == ("stdout", "later")
    assert len(got) == 7


def test_what_was_dropped_is_reported_when_the_stream_ends() -> None:
    out, got, _, _ = output()
    out.feed("stdout", b"x\n" * 9)
    out.close("stdout")
    assert got[-1][0] == NOTICE_STREAM
    assert got[-1][1].startswith("4 lines (4 bytes) of output dropped")


def test_a_line_longer_than_the_limit_is_cut_and_its_rest_is_not_kept() -> None:
    out, got, _, _ = output()
    out.feed("stdout", b"a" * 150)  # no newline yet, but already over: goes out cut
    out.feed("stdout", b"b" * 150 + b"\nshort\n")
    lines = [line for _, line in got]
    assert lines[0] == "a" * 100 + " [cut: the line was longer than 100 bytes]"
    assert lines[1] == "b" * 100 + " [cut: the line was longer than 100 bytes]"
    assert lines[2] == "short"
    assert not out._partial  # nothing of them held


def test_a_consumer_that_raises_loses_the_line_not_the_output() -> None:
    drops = LogDrops()

    def broken(name: str, stream: str, line: str) -> None:
        raise OSError(28, "No space left on device")

    out = Output("r1", broken, drops=drops)
    out.feed("stdout", b"a\nb\n")
    assert drops.lines("error") == 2
    assert list(out.recent) == ["a", "b"]


async def test_the_pump_drains_a_flood_and_takes_only_the_rate() -> None:
    """A process writing 20 MB ends (it never blocks on its pipe) though little is taken."""
    drops = LogDrops()
    got: list[str] = []
    limits = OutputLimits(lines_per_second=100, bytes_per_second=100_000)
    out = Output("r1", lambda name, stream, line: got.append(line), limits=limits, drops=drops)
    code = "import sys\nfor _ in range(20 * 1024):\n    sys.stdout.write('y' * 1023 + '\\n')\n"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    await asyncio.wait_for(_pump(process.stdout, "stdout", out), 30)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    taken = sum(1 for line in got if not line.startswith(tuple("0123456789")))
    assert taken <= 100 + 100 * 30  # the burst, plus the rate for as long as it could run
    assert taken + drops.lines("rate") == 20 * 1024
    assert "lines" in got[-1] and "dropped" in got[-1]
