"""Per-second load reports folded into the stable and panic averages the decision reads.

Every replica proxy and the activator send one `Observation` a second for each revision:
the average number of requests in flight during that second and the number of requests
it received in it. `MetricWindow` keeps them in one-second buckets and answers, for a
moment `now`, the average over the stable window and over the panic window.

How a window average is formed (and why):

1. Bucket by second: an observation at time t lands in bucket floor(t); the window of
   length W at `now` is the ceil(W) buckets ending with floor(now), the current (still
   filling) second included, so a report the activator sends with a poke counts at once.
2. Within a second, a source's reports are averaged first, then the sources are summed.
   Timer jitter can put two reports of one proxy into one second; averaging keeps that
   from counting the proxy twice. The sum is the revision's total load in that second,
   which is what Knative averages too: the decision divides the *total* by the
   per-replica target.
2a. A source missing from a second that has reports is counted with its value of the
   second before, when it is evidently still reporting: in a past second, when it
   reported in the seconds on both sides (jitter put its reports at x.999 and x+2.001);
   in the current second, when its last report is less than a second old (it is not due
   yet). Without this the still-filling current second counted only the sources that
   had reported so far -- with ten replicas and a 6 s panic window the average of a
   steady load of 10 was 9.4, below 9 a fifth of the time, so ceil(average / target)
   seldom reached 10. A source that stopped (a replica gone) is overdue and not counted.
3. The window average is the mean of the per-second totals over the seconds *that have
   data*. Reporters send every second, zero load included, so an idle revision still
   averages down to zero; a second in which nobody reported means the reports were lost
   or late (a slow network, a restarted autoscaler), not that the load was zero. Counting
   such seconds as zero would let a reporting hiccup shrink a busy revision. This
   matches Knative where it matters: at the start, and when reports stop, Knative too
   averages only over the part of the window that has been written; Knative treats a
   gap *between* written seconds as zero load, fnmesh does not.
4. When the panic window holds no data but the stable window does, the panic average is
   the stable average (the best estimate there is), not zero. When the stable window
   holds no data at all there is nothing to decide on: `averages` returns None.

Observations older than the retention (the longest window asked for) behind the newest
one are dropped on arrival, and older buckets are dropped as newer seconds arrive.

Reporters must not count a request twice: a request the activator forwards is in flight
at the activator *and* at the replica proxy; the proxy leaves such proxied requests out
of its report (Knative subtracts them the same way).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from fnmesh.autoscaler.spec import CONCURRENCY, METRICS, RPS


@dataclass(frozen=True, slots=True)
class Observation:
    """One reporter's load on one revision during one second (ending at `time`)."""

    time: float
    concurrency: float  # average requests in flight during the second
    rps: float  # requests received during the second
    source: str  # the reporting replica proxy or activator


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Observed load of a revision: the totals averaged over the stable and panic windows."""

    stable: float
    panic: float


class MetricReader(Protocol):
    """Anything that can answer the window averages a decision needs."""

    def averages(
        self, metric: str, stable_window: float, panic_window: float, now: float
    ) -> Aggregates | None: ...


# A source's sums within one second: (reports, concurrency sum, rps sum, newest time).
_Sums = tuple[int, float, float, float]


class MetricWindow:
    """One-second buckets of a revision's reports, kept for `retention` seconds."""

    def __init__(self, retention: float = 60.0) -> None:
        self._keep = _whole_seconds("retention", retention)
        self._buckets: dict[int, dict[str, _Sums]] = {}
        self._newest: int | None = None

    @property
    def retention(self) -> float:
        """Seconds of history kept behind the newest report."""
        return float(self._keep)

    def resize(self, retention: float) -> None:
        """Keep `retention` seconds from now on (e.g. after the stable window changed)."""
        self._keep = _whole_seconds("retention", retention)
        if self._newest is not None:
            self.drop_before(self._newest - self._keep + 1)

    def __len__(self) -> int:
        """Number of seconds that hold at least one report."""
        return len(self._buckets)

    def record(self, observation: Observation) -> None:
        """Add one report; a report older than the retention behind the newest is ignored."""
        _check(observation)
        second = math.floor(observation.time)
        if self._newest is not None and second <= self._newest - self._keep:
            return
        bucket = self._buckets.setdefault(second, {})
        count, concurrency, rps, newest = bucket.get(observation.source, (0, 0.0, 0.0, -math.inf))
        bucket[observation.source] = (
            count + 1,
            concurrency + observation.concurrency,
            rps + observation.rps,
            max(newest, observation.time),
        )
        if self._newest is None or second > self._newest:
            self._newest = second
            self.drop_before(second - self._keep + 1)

    def extend(self, observations: Iterable[Observation]) -> None:
        """Add several reports."""
        for observation in observations:
            self.record(observation)

    def drop_before(self, time: float) -> None:
        """Forget the seconds before the one `time` falls in."""
        first_kept = math.floor(time)
        for second in [s for s in self._buckets if s < first_kept]:
            del self._buckets[second]

    def total(self, metric: str, second: int, now: float | None = None) -> float | None:
        """The revision's total `metric` in one second, or None when nobody reported.

        Sources missing from the second count with their value of the second before
        when they reported on both sides of it, or -- for the second `now` is in -- when
        their last report is less than a second before `now` (see 2a above).
        """
        bucket = self._buckets.get(second)
        if bucket is None:
            return None
        index = _metric_index(metric)
        total = sum(sums[index] / sums[0] for sums in bucket.values())
        before = self._buckets.get(second - 1)
        if before is None:
            return total
        seen = math.floor(now) if now is not None else None  # the last second seen at `now`
        after = self._buckets.get(second + 1) if seen is None or second < seen else None
        current = seen == second
        for source, sums in before.items():
            if source in bucket:
                continue
            if (after is not None and source in after) or (
                current and now is not None and now - 1.0 < sums[3] <= now
            ):
                total += sums[index] / sums[0]
        return total

    def average(self, metric: str, window: float, now: float) -> float | None:
        """Mean of the per-second totals over the last `window` seconds that have data."""
        _metric_index(metric)
        length = _whole_seconds("window", window)
        if length > self._keep:
            raise ValueError(
                f"window: {window} s is longer than the {self._keep} s this MetricWindow keeps; "
                "resize it to the longest window asked for"
            )
        last = math.floor(now)
        totals = [
            total
            for second in range(last - length + 1, last + 1)
            if (total := self.total(metric, second, now)) is not None
        ]
        return sum(totals) / len(totals) if totals else None

    def averages(
        self, metric: str, stable_window: float, panic_window: float, now: float
    ) -> Aggregates | None:
        """Stable and panic averages at `now`, or None when the stable window has no data."""
        stable = self.average(metric, stable_window, now)
        if stable is None:
            return None
        panic = self.average(metric, panic_window, now)
        return Aggregates(stable=stable, panic=stable if panic is None else panic)


def _metric_index(metric: str) -> int:
    if metric == CONCURRENCY:
        return 1
    if metric == RPS:
        return 2
    raise ValueError(f"metric: must be one of {', '.join(METRICS)}; got {metric!r}")


def _whole_seconds(name: str, seconds: float) -> int:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name}: must be a positive number of seconds; got {seconds!r}")
    return max(1, math.ceil(round(seconds, 6)))


def _check(observation: Observation) -> None:
    for name in ("time", "concurrency", "rps"):
        value = getattr(observation, name)
        low = -math.inf if name == "time" else 0.0
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= low):
            raise ValueError(
                f"observation.{name}: must be a finite number"
                f"{'' if name == 'time' else ' >= 0'}; got {value!r} from {observation.source!r}"
            )
