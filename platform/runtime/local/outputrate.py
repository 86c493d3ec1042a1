"""How much of a replica's output the platform takes: a token bucket over lines and bytes.

Pure: the caller passes ``now`` (seconds on any monotonic clock). The bucket holds one
second's allowance of each and refills continuously, so a replica may burst up to its
per-second limits and then keeps to them on average. What does not fit is the caller's
to drop and count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A line longer than this is cut (and marked so); the byte rate must allow at least one.
MAX_LINE_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """What is taken from one replica process per second; the rest is dropped and counted."""

    lines_per_second: int = 2000
    bytes_per_second: int = 1024 * 1024
    max_line_bytes: int = MAX_LINE_BYTES

    def __post_init__(self) -> None:
        if self.lines_per_second < 1:
            raise ValueError("lines_per_second must be at least 1")
        if self.bytes_per_second < self.max_line_bytes + 1:
            raise ValueError(
                f"bytes_per_second must be at least {self.max_line_bytes + 1} (one whole line)"
            )


class OutputRate:
    """Token buckets for lines and bytes, refilled from ``now``."""

    def __init__(self, limits: OutputLimits) -> None:
        self.limits = limits
        self.lines = float(limits.lines_per_second)
        self.bytes = float(limits.bytes_per_second)
        self._at: float | None = None

    def refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            elapsed = now - self._at
            limits = self.limits
            self.lines = min(
                float(limits.lines_per_second), self.lines + elapsed * limits.lines_per_second
            )
            self.bytes = min(
                float(limits.bytes_per_second), self.bytes + elapsed * limits.bytes_per_second
            )
        if self._at is None or now > self._at:
            self._at = now

    def empty(self, now: float) -> bool:
        """True when not even a one-byte line would be taken now."""
        self.refill(now)
        return self.lines < 1 or self.bytes < 2

    def take(self, now: float, lines: Sequence[bytes]) -> int:
        """How many of ``lines``, from the first, fit now (each costs its length plus one
        byte for its newline); those are taken from the buckets."""
        self.refill(now)
        taken = 0
        for line in lines:
            cost = len(line) + 1
            if self.lines < 1 or self.bytes < cost:
                break
            self.lines -= 1
            self.bytes -= cost
            taken += 1
        return taken
