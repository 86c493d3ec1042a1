"""Canary analysis: the next step of a rollout from the canary's metrics and ``now`` (pure).

A rollout moves traffic from the ``stable`` revision to the ``canary`` in steps of
``stepWeight`` percent, one step per ``interval``, as long as each interval's check of the
canary passes: success rate at least ``minSuccessRate`` percent and p99 latency at most
``maxLatencyP99``. An interval with fewer than ``minRequests`` requests is neither a pass
nor a failure: the weight stays. After ``threshold`` failed checks all traffic returns to
the stable revision (``RolledBack``); a check that passes at ``maxWeight`` promotes the
canary to 100 % (``Promoted``).

The metrics come from the mesh's replica proxies (the telemetry hub's golden metrics over
the last interval); anything with ``requests``, ``success_rate`` (0..1) and ``p99_ms``
will do. Time is seconds since the epoch, given by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal, Protocol

from fnmesh.platform.model import RolloutSpec, TrafficTarget
from fnmesh.platform.model.resources import RolloutStatus

PROGRESSING: Final = "Progressing"
PROMOTED: Final = "Promoted"
ROLLED_BACK: Final = "RolledBack"
EARLIEST_RECHECK = 0.05  # seconds: a check due "now" is looked at again this soon at most


class Sample(Protocol):
    """Request outcomes of one revision over the last interval (``telemetry.windows.Golden``)."""

    @property
    def requests(self) -> int: ...

    @property
    def success_rate(self) -> float | None: ...

    @property
    def p99_ms(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one interval's check."""

    outcome: Literal["passed", "failed", "skipped"]
    message: str


def start(
    canary: str, stable: str, spec: RolloutSpec, now: float, *, command: str | None = None
) -> RolloutStatus:
    """A canary's first step: ``stepWeight`` percent of the traffic, checked an interval on."""
    weight = min(spec.step_weight, spec.max_weight)
    return RolloutStatus(
        canary=canary,
        stable=stable,
        weight=weight,
        failed_checks=0,
        last_step=now,
        phase=PROGRESSING,
        reason="Started",
        message=f"{canary} takes {weight}% of the traffic from {stable}",
        command=command,
    )


def check(spec: RolloutSpec, sample: Sample | None) -> Verdict:
    """Judge one interval of the canary's metrics against the rollout's limits."""
    requests = sample.requests if sample is not None else 0
    if sample is None or requests < max(spec.min_requests, 1):
        return Verdict(
            "skipped",
            f"{requests} requests in the last interval, fewer than the {spec.min_requests} "
            "a check needs",
        )
    rate = sample.success_rate
    if rate is not None and rate * 100 < spec.min_success_rate:
        return Verdict(
            "failed",
            f"success rate {rate * 100:.2f}% is below {spec.min_success_rate:g}% "
            f"({requests} requests)",
        )
    limit_ms = spec.max_latency_p99 * 1000
    if sample.p99_ms is not None and sample.p99_ms > limit_ms:
        return Verdict("failed", f"p99 latency {sample.p99_ms:.0f}ms is above {limit_ms:g}ms")
    shown = f"{rate * 100:.2f}%" if rate is not None else "n/a"
    p99 = f"{sample.p99_ms:.0f}ms" if sample.p99_ms is not None else "n/a"
    return Verdict("passed", f"success rate {shown}, p99 {p99} ({requests} requests)")


def due_in(spec: RolloutSpec, state: RolloutStatus, now: float) -> float | None:
    """Seconds until the next check of a progressing rollout; None when it is over."""
    if state.phase != PROGRESSING:
        return None
    if now < state.last_step:  # the wall clock went back: check soon, never in an hour
        return EARLIEST_RECHECK
    return max(EARLIEST_RECHECK, state.last_step + spec.interval - now)


def is_due(spec: RolloutSpec, state: RolloutStatus, now: float) -> bool:
    """Whether a progressing rollout's next check is due at ``now`` (its sample is read
    only then). A last step in the future means the wall clock went back (steps are kept
    in epoch seconds, so they survive a restart): due at once, not when the clock catches
    up, which could be hours away."""
    went_back = now < state.last_step
    return state.phase == PROGRESSING and (now >= state.last_step + spec.interval or went_back)


def analyse(
    spec: RolloutSpec, state: RolloutStatus, sample: Sample | None, now: float
) -> RolloutStatus:
    """The rollout after ``now``: unchanged until its check is due (``is_due``), then one
    check."""
    if not is_due(spec, state, now):
        return state
    verdict = check(spec, sample)
    if verdict.outcome == "skipped":
        return replace(state, last_step=now, reason="TooFewRequests", message=verdict.message)
    if verdict.outcome == "failed":
        failed = state.failed_checks + 1
        if failed >= spec.threshold:
            return roll_back(
                replace(state, failed_checks=failed),
                "ChecksFailed",
                f"{state.canary} failed {failed} checks; the last: {verdict.message}",
                now,
            )
        return replace(
            state,
            failed_checks=failed,
            last_step=now,
            reason="CheckFailed",
            message=f"check {failed} of {spec.threshold} failed: {verdict.message}",
        )
    if state.weight >= spec.max_weight:
        return promote(state, "Promoted", f"{state.canary} passed every check: {verdict.message}")
    weight = min(state.weight + spec.step_weight, spec.max_weight)
    return replace(
        state,
        weight=weight,
        last_step=now,
        reason="StepUp",
        message=f"{state.canary} at {weight}%: {verdict.message}",
    )


def roll_back(state: RolloutStatus, reason: str, message: str, now: float) -> RolloutStatus:
    """Every request back to the stable revision; the canary is marked failed."""
    return replace(
        state, phase=ROLLED_BACK, weight=0, last_step=now, reason=reason, message=message
    )


def promote(state: RolloutStatus, reason: str, message: str) -> RolloutStatus:
    """Every request to the canary."""
    return replace(state, phase=PROMOTED, weight=100, reason=reason, message=message)


def weights(state: RolloutStatus) -> list[TrafficTarget]:
    """The traffic a rollout state sends: stable and canary shares, revisions at 0 left out."""
    if state.phase == PROMOTED or state.stable is None:
        return [TrafficTarget(state.canary, 100)]
    if state.phase == ROLLED_BACK:
        return [TrafficTarget(state.stable, 100)]
    return [
        target
        for target in (
            TrafficTarget(state.stable, 100 - state.weight),
            TrafficTarget(state.canary, state.weight),
        )
        if target.percent > 0
    ]
