"""Power of two choices over peak-EWMA latency (pure: ``now`` and the dice are given).

Finagle's and Linkerd's latency-aware balancer. Each endpoint keeps an exponentially
weighted moving average of its response times that is *peak-sensitive*: a sample slower
than the average replaces it at once, a faster one pulls it down with time constant
``decay`` (so one slow response is remembered for about ``decay`` seconds), and with no
samples the estimate decays towards zero, so an idle endpoint is tried again. A new
endpoint starts at ``default_rtt`` until its first response replaces that. An
endpoint's cost is ``estimate * (pending + 1)``: latency weighted by the requests it
already has. To choose, two distinct endpoints are drawn at random from those the
``admits`` predicate allows (failure accrual's ejections) and the cheaper one wins: no
full scan, and no herd on the single best endpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Sequence
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)
Admits = Callable[[str, float], bool]


class Load:
    """One endpoint's latency estimate and requests in flight (mutable, per balancer)."""

    __slots__ = ("estimate", "pending", "sampled", "stamp")

    def __init__(self, estimate: float, stamp: float) -> None:
        self.estimate = estimate  # seconds
        self.stamp = stamp  # when the estimate was last updated
        self.pending = 0
        self.sampled = False  # False: the estimate is the default, not a measurement

    def cost(self, now: float, decay: float) -> float:
        elapsed = now - self.stamp
        estimate = self.estimate * math.exp(-elapsed / decay) if elapsed > 0 else self.estimate
        return estimate * (self.pending + 1)

    def observe(self, rtt: float, now: float, decay: float) -> None:
        """A response took ``rtt`` seconds: peak-sensitive exponentially weighted average.

        The first sample replaces the default estimate outright.
        """
        if rtt > self.estimate or not self.sampled:
            self.estimate = rtt
            self.sampled = True
        else:
            elapsed = now - self.stamp
            weight = math.exp(-elapsed / decay) if elapsed > 0 else 1.0
            self.estimate = self.estimate * weight + rtt * (1.0 - weight)
        self.stamp = now


class Balancer:
    """Chooses among endpoints by P2C over peak-EWMA cost; tracks their loads by name."""

    __slots__ = ("_loads", "_roll", "decay", "default_rtt")

    def __init__(
        self, *, roll: Callable[[], float], decay: float = 10.0, default_rtt: float = 0.03
    ) -> None:
        if decay <= 0:
            raise ValueError(f"decay {decay} must be a positive number of seconds (e.g. 10)")
        if default_rtt < 0:
            raise ValueError(f"default_rtt {default_rtt} must be 0 or more seconds (e.g. 0.03)")
        self.decay = decay
        self.default_rtt = default_rtt
        self._roll = roll  # a number in [0, 1)
        self._loads: dict[str, Load] = {}

    def load(self, name: str, now: float) -> Load:
        """The load of endpoint ``name``; a new endpoint starts at ``default_rtt``."""
        load = self._loads.get(name)
        if load is None:
            load = self._loads[name] = Load(self.default_rtt, now)
        return load

    def cost(self, name: str, now: float) -> float:
        return self.load(name, now).cost(now, self.decay)

    def pick(
        self,
        endpoints: Sequence[E],
        now: float,
        *,
        admits: Admits | None = None,
        avoid: Container[str] = (),
    ) -> E | None:
        """The cheaper of two random admitted endpoints, preferring ones not in ``avoid``.

        ``avoid`` holds endpoints already tried for this request: they are chosen only
        when no other admitted endpoint is left. None when no endpoint is admitted.
        """
        candidates = endpoints
        if admits is not None or avoid:
            allowed = [e for e in endpoints if admits is None or admits(e.name, now)]
            fresh = [e for e in allowed if e.name not in avoid] if avoid else allowed
            candidates = fresh or allowed
        count = len(candidates)
        if count == 0:
            return None
        if count == 1:
            return candidates[0]
        roll = self._roll  # in [0, 1)
        first = int(roll() * count)
        if count == 2:
            second = 1 - first
        else:
            second = int(roll() * (count - 1))
            if second >= first:
                second += 1
        a, b = candidates[first], candidates[second]
        loads = self._loads
        load_a = loads.get(a.name) or self.load(a.name, now)
        load_b = loads.get(b.name) or self.load(b.name, now)
        return b if load_b.cost(now, self.decay) < load_a.cost(now, self.decay) else a

    def start(self, name: str, now: float) -> Load:
        """A request goes to ``name``: it counts as pending until ``finish``."""
        load = self.load(name, now)
        load.pending += 1
        return load

    def finish(self, load: Load, rtt: float, now: float, *, failed: bool = False) -> None:
        """The request ended after ``rtt`` seconds.

        A failure never makes an endpoint look faster than it was (a refused connection
        is quick): its sample counts only when it is slower than the estimate.
        """
        load.pending -= 1
        if failed:
            rtt = max(rtt, load.estimate)
        load.observe(rtt, now, self.decay)

    def forget(self, keep: set[str]) -> None:
        """Drop the loads of endpoints not in ``keep`` (they left the destination)."""
        for name in [n for n in self._loads if n not in keep]:
            del self._loads[name]
