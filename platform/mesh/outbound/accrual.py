"""Failure accrual: eject an endpoint after consecutive failures, probe it back (pure).

Finagle's and Linkerd's circuit breaker per endpoint, in three states:

- closed: requests flow; ``threshold`` consecutive failures (a 5xx, or no response at
  all) eject the endpoint.
- open (ejected): the balancer does not choose it for a backoff that starts at
  ``min_backoff`` and doubles with every ejection in a row up to ``max_backoff``, plus up
  to ``jitter`` of itself at random so that many clients do not probe in step.
- half-open: the backoff has passed; exactly one request (the probe) may go. Its success
  closes the circuit (and resets the backoff); its failure ejects the endpoint again
  with the next, longer backoff.

Outcomes of requests dispatched before an ejection are ignored while the endpoint is
open or half-open: only the probe decides. Every method is given ``now``; the random
source is injected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class AccrualSpec:
    threshold: int = 7  # consecutive failures that eject an endpoint
    min_backoff: float = 1.0  # seconds of the first ejection
    max_backoff: float = 60.0  # the backoff doubles up to this
    jitter: float = 0.2  # up to this fraction of the backoff is added at random

    def __post_init__(self) -> None:
        problems = []
        if self.threshold < 1:
            problems.append(f"threshold {self.threshold} must be 1 or more")
        if not 0 < self.min_backoff <= self.max_backoff:
            problems.append(
                f"min_backoff {self.min_backoff} must be above 0 and at most max_backoff"
                f" {self.max_backoff}"
            )
        if not 0 <= self.jitter <= 1:
            problems.append(f"jitter {self.jitter} must be between 0 and 1")
        if problems:
            raise ValueError("failure accrual: " + "; ".join(problems))

    def backoff(self, ejections: int, roll: float) -> float:
        """Seconds an endpoint stays out after its ``ejections``-th ejection in a row."""
        base = min(self.max_backoff, self.min_backoff * 2.0 ** min(ejections - 1, 62))
        return base * (1.0 + self.jitter * roll)


@dataclass(slots=True)
class _Circuit:
    """What accrual knows of one endpoint that failed recently (mutable, private)."""

    failures: int = 0  # consecutive failures while closed
    state: State = State.CLOSED
    ejections: int = 0  # ejections in a row (reset by a success)
    until: float = 0.0  # while open: when the probe may go
    probing: bool = False  # while half-open: the probe is in flight


class FailureAccrual:
    """Circuit state per endpoint key; endpoints never seen failing are closed."""

    __slots__ = ("_circuits", "_ejected", "_roll", "spec")

    def __init__(self, spec: AccrualSpec = AccrualSpec(), *, roll: Callable[[], float]) -> None:
        self.spec = spec
        self._roll = roll  # a number in [0, 1)
        self._circuits: dict[str, _Circuit] = {}
        self._ejected = 0  # circuits not closed: 0 lets callers skip filtering

    @property
    def any_ejected(self) -> bool:
        """True when some endpoint is open or half-open."""
        return self._ejected > 0

    def state(self, key: str, now: float) -> State:
        circuit = self._circuits.get(key)
        if circuit is None:
            return State.CLOSED
        if circuit.state is State.OPEN and now >= circuit.until:
            return State.HALF_OPEN
        return circuit.state

    def admits(self, key: str, now: float) -> bool:
        """May the balancer choose ``key`` now? (closed, or half-open with no probe out)."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.state is State.CLOSED:
            return True
        if circuit.state is State.OPEN:
            return now >= circuit.until
        return not circuit.probing

    def dispatch(self, key: str, now: float) -> bool:
        """A request goes to ``key``; True when it is the probe of a half-open endpoint."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.state is State.CLOSED:
            return False
        if circuit.state is State.OPEN:
            if now < circuit.until:
                return False
            circuit.state = State.HALF_OPEN
        if circuit.probing:
            return False
        circuit.probing = True
        return True

    def success(self, key: str, now: float, *, probe: bool = False) -> None:
        circuit = self._circuits.get(key)
        if circuit is None:
            return
        if circuit.state is State.CLOSED:
            del self._circuits[key]  # healthy again: forget it
        elif probe:
            del self._circuits[key]
            self._ejected -= 1

    def failure(self, key: str, now: float, *, probe: bool = False) -> None:
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = _Circuit()
        if circuit.state is State.CLOSED:
            circuit.failures += 1
            if circuit.failures >= self.spec.threshold:
                self._ejected += 1
                self._eject(circuit, now)
        elif probe:
            self._eject(circuit, now)

    def abandon(self, key: str, *, probe: bool) -> None:
        """The request ended with no outcome (cancelled): a probe may be sent again."""
        circuit = self._circuits.get(key)
        if probe and circuit is not None and circuit.state is State.HALF_OPEN:
            circuit.probing = False

    def probe_in(self, keys: Iterable[str], now: float) -> float | None:
        """Seconds until one of the ejected ``keys`` may be probed (0: a probe is out).

        None when some key is not ejected at all.
        """
        soonest: float | None = None
        for key in keys:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.state is State.CLOSED:
                return None
            wait = max(0.0, circuit.until - now)
            soonest = wait if soonest is None else min(soonest, wait)
        return soonest

    def forget(self, keep: set[str]) -> None:
        """Drop the state of endpoints not in ``keep`` (they left the destination)."""
        for key in [k for k in self._circuits if k not in keep]:
            if self._circuits.pop(key).state is not State.CLOSED:
                self._ejected -= 1

    def _eject(self, circuit: _Circuit, now: float) -> None:
        circuit.ejections += 1
        circuit.state = State.OPEN
        circuit.failures = 0
        circuit.probing = False
        circuit.until = now + self.spec.backoff(circuit.ejections, self._roll())
