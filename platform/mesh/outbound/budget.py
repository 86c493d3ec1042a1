"""A retry budget: retries may add at most a ratio of the requests, plus a floor (pure).

Linkerd's and Finagle's budget: every original request deposits into a window of the
last ``ttl`` seconds, every retry withdraws; deposits and withdrawals older than ``ttl``
expire. A retry is allowed while the window holds enough for one, plus a reserve of
``min_per_second * ttl`` retries that never runs out, so a client sending few requests may
still retry a little. Over any ``ttl`` window, retries <= ratio * requests + the reserve.

The window is kept in ``slots`` buckets, each ``ttl / slots`` seconds wide; a bucket is
dropped whole when it leaves the window. Amounts are integers (a request deposits
``SCALE``, a retry costs ``SCALE / ratio``) so no rounding creeps in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCALE = 1000


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    ratio: float = 0.2  # retries allowed per original request
    min_per_second: float = 10.0  # retries always allowed per second, whatever the traffic
    ttl: float = 10.0  # seconds a deposit counts
    slots: int = 10  # buckets the window is kept in

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.ratio <= 1000.0:
            problems.append(f"ratio {self.ratio} must be between 0 and 1000 (0.2 is 20 %)")
        if self.min_per_second < 0:
            problems.append(f"min_per_second {self.min_per_second} must be 0 or more")
        if not 1.0 <= self.ttl <= 60.0:
            problems.append(f"ttl {self.ttl} must be between 1 and 60 seconds")
        if self.slots < 1:
            problems.append(f"slots {self.slots} must be 1 or more")
        if problems:
            raise ValueError("retry budget: " + "; ".join(problems))


class RetryBudget:
    """Deposits and withdrawals over a sliding window; every call is given ``now``."""

    __slots__ = ("_balance", "_buckets", "_current", "_deposit", "_reserve", "_width", "_withdraw")

    def __init__(self, spec: BudgetSpec = BudgetSpec()) -> None:
        if spec.ratio == 0:
            self._deposit, self._withdraw = 0, SCALE
        else:
            self._deposit, self._withdraw = SCALE, max(1, round(SCALE / spec.ratio))
        self._reserve = math.floor(spec.min_per_second * spec.ttl) * self._withdraw
        self._width = spec.ttl / spec.slots
        self._buckets = [0] * spec.slots
        self._balance = 0  # the sum of the buckets
        self._current: int | None = None  # index of the bucket now being written

    def deposit(self, now: float) -> None:
        """An original request was sent."""
        self._add(self._deposit, now)

    def withdraw(self, now: float) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        self._advance(now)
        if self._balance + self._reserve < self._withdraw:
            return False
        self._add(-self._withdraw, now)
        return True

    def available(self, now: float) -> float:
        """How many retries the budget allows right now."""
        self._advance(now)
        return max(0, self._balance + self._reserve) / self._withdraw

    def _add(self, amount: int, now: float) -> None:
        self._advance(now)
        assert self._current is not None
        self._buckets[self._current % len(self._buckets)] += amount
        self._balance += amount

    def _advance(self, now: float) -> None:
        """Drop the buckets that left the window since the last call."""
        index = math.floor(now / self._width)
        current = self._current
        if current is None or index <= current:
            if current is None:
                self._current = index
            return  # a clock that steps back keeps writing into the current bucket
        buckets = self._buckets
        size = len(buckets)
        if index - current >= size:
            buckets[:] = [0] * size
            self._balance = 0
        else:
            for step in range(current + 1, index + 1):
                slot = step % size
                self._balance -= buckets[slot]
                buckets[slot] = 0
        self._current = index
