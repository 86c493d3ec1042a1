"""When to restart a crashed replica (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    minimum: float = 0.5
    maximum: float = 30.0
    healthy_after: float = 60.0  # a replica that ran this long resets the count

    def delay(self, crashes: int) -> float:
        """Seconds to wait before the restart that follows ``crashes`` consecutive crashes."""
        if crashes <= 0:
            return 0.0
        return float(min(self.maximum, self.minimum * 2 ** (crashes - 1)))

    def next_crashes(self, crashes: int, ran_for: float) -> int:
        return 1 if ran_for >= self.healthy_after else crashes + 1
