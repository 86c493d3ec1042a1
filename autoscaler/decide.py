"""The scaling decision: how many replicas a revision should have at `now`.

`decide` is Knative's KPA (the decider's `Scale` plus the scale-to-zero handling of its
scaler) as one pure function. Its steps, in order:

1. No data in the stable window: before the revision first reached its initial scale,
   ask for `initial_scale`; afterwards answer `KEEP` (-1): leave the replicas as they are,
   for at most a stable window. Ready replicas report every second, even when idle, so
   a silence longer than the stable window means they are idle or unhealthy: unless
   requests wait in the activator, the revision goes to `min_scale` (zero by default),
   reason `no-data-timeout`, instead of being held forever. A request that comes later
   wakes it through the activator, as from any scale to zero.
2. Desired replicas in each window: ceil(observed average / (target * utilization)).
3. Rate limits, taken from the ready replicas (0 counts as 1, as in Knative): at most
   ceil(ready * max_scale_up_rate), at least floor(ready / max_scale_down_rate).
4. Activation scale: while there is any demand the count is at least `activation_scale`.
   Knative applies it the same way; applying it only at the moment of leaving zero
   would let the next decision shrink the revision right back.
5. Panic: entered when the panic-window count reaches panic_threshold_percentage / 100
   of the ready replicas; extended by every decision still over the threshold; left
   when a full stable window has passed since the last one over it. In panic the
   larger of the two window counts is taken and the revision never shrinks: it holds
   the largest count seen in this panic.
6. Scale-down delay: the largest count decided during the last `scale_down_delay`
   seconds.
7. `min_scale` / `max_scale`; until the revision has first reached its initial scale,
   at least `initial_scale`.
8. Scale to zero: a count of 0 stands only once no decision has wanted a replica for
   `scale_to_zero_grace_period` seconds; until then one replica is kept. (The stable
   average itself reaches zero only a stable window after the last request, so an idle
   revision goes to zero stable_window + grace period after its last request.)

Every decision also reports the excess burst capacity, Knative's formula:
floor(ready * target_total - target_burst_capacity - panic-window observed value), 0
when target_burst_capacity is 0, and -1 when it is negative. The driver keeps the
activator in the request path while it is negative.

When the autoscaler starts on a revision that already has more than one ready replica
(a restart lost the window history), the first decision starts in panic mode so the
revision is held at its current size until a stable window of data has accumulated.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from fnmesh.autoscaler.spec import ScalingSpec
from fnmesh.autoscaler.window import Aggregates, MetricReader

#: `Decision.desired_replicas` when there is no data to decide on: keep the current scale.
KEEP = -1


class Reason(enum.StrEnum):
    """The last step that shaped a decision."""

    STABLE = "stable"
    NO_DATA = "no-data"
    NO_DATA_TIMEOUT = "no-data-timeout"
    INITIAL_SCALE = "initial-scale"
    SCALE_UP_LIMIT = "scale-up-limit"
    SCALE_DOWN_LIMIT = "scale-down-limit"
    ACTIVATION_SCALE = "activation-scale"
    PANIC = "panic"
    PANIC_HOLD = "panic-hold"
    SCALE_DOWN_DELAY = "scale-down-delay"
    MIN_SCALE = "min-scale"
    MAX_SCALE = "max-scale"
    GRACE_PERIOD = "grace-period"
    SCALE_TO_ZERO = "scale-to-zero"
    AT_ZERO = "at-zero"


@dataclass(frozen=True, slots=True)
class ScalerState:
    """What one revision's decisions carry from one to the next. Start with `ScalerState()`."""

    started: float | None = None  # time of the first decision
    initialized: bool = False  # the revision has reached its initial scale once
    panic_since: float | None = None  # when the current panic began; None: not in panic
    last_over_threshold: float | None = None  # last decision over the panic threshold
    max_panic_replicas: int = 0  # the largest count decided during the current panic
    last_demand: float | None = None  # last decision that wanted at least one replica
    recent: tuple[tuple[float, int], ...] = ()  # (time, count) within the scale-down delay
    last_data: float | None = None  # last decision that had data in its stable window

    @property
    def panicking(self) -> bool:
        return self.panic_since is not None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one decision, and the state to pass to the next one."""

    desired_replicas: int  # KEEP (-1): no data yet, leave the replicas as they are
    excess_burst_capacity: float  # negative: keep the activator in the request path
    panic: bool
    reason: str
    state: ScalerState
    observed_stable: float | None = None  # the window averages decided on, None without data
    observed_panic: float | None = None


def decide(
    spec: ScalingSpec,
    state: ScalerState,
    metrics: Aggregates | MetricReader | None,
    ready_replicas: int,
    now: float,
    *,
    waiting: int = 0,
) -> Decision:
    """Decide the replicas of one revision at `now` from its observed load.

    `metrics` is either the window averages themselves or something that computes them
    (a `MetricWindow`); None means no data. `waiting` is the number of requests the
    activator holds for the revision. Raises ValueError for an invalid spec or a
    negative `ready_replicas` or `waiting`.
    """
    problems = spec.validate()
    if problems:
        raise ValueError("invalid scaling spec: " + "; ".join(problems))
    if ready_replicas < 0:
        raise ValueError(f"ready_replicas: must be >= 0; got {ready_replicas}")
    if waiting < 0:
        raise ValueError(f"waiting: must be >= 0; got {waiting}")
    if state.started is None:
        state = _first_state(ready_replicas, now)
    if not state.initialized and ready_replicas >= spec.bounded(spec.initial_scale):
        state = replace(state, initialized=True)

    observed = _observe(spec, metrics, now)
    if observed is None:
        return _without_data(spec, state, ready_replicas, waiting, now)
    state = replace(state, last_data=now)

    step = _Step(Reason.STABLE)
    count, panic_count = _window_counts(spec, observed, ready_replicas, step)
    state, count = _apply_panic(
        spec, state, observed, count, panic_count, ready_replicas, now, step
    )
    state, count = _apply_delay(spec, state, count, now, step)
    count = step.change(count, spec.bounded(count), Reason.MIN_SCALE, Reason.MAX_SCALE)
    if not state.initialized:
        initial = max(count, spec.bounded(spec.initial_scale))
        count = step.change(count, initial, Reason.INITIAL_SCALE)
    state, count = _apply_zero(spec, state, count, ready_replicas, now, step)
    return Decision(
        desired_replicas=count,
        excess_burst_capacity=_excess_burst_capacity(spec, ready_replicas, observed.panic),
        panic=state.panicking,
        reason=step.reason,
        state=state,
        observed_stable=observed.stable,
        observed_panic=observed.panic,
    )


@dataclass(slots=True)
class _Step:
    """The reason of the decision being built: the last step that changed the count."""

    reason: str

    def change(self, old: int, new: int, raised: str, lowered: str | None = None) -> int:
        """Return `new`; when it differs from `old`, name the step that moved it."""
        if new > old:
            self.reason = raised
        elif new < old:
            self.reason = raised if lowered is None else lowered
        return new


def _first_state(ready: int, now: float) -> ScalerState:
    if ready > 1:
        return ScalerState(
            started=now, panic_since=now, last_over_threshold=now, max_panic_replicas=ready
        )
    return ScalerState(started=now)


def _observe(
    spec: ScalingSpec, metrics: Aggregates | MetricReader | None, now: float
) -> Aggregates | None:
    if metrics is None or isinstance(metrics, Aggregates):
        return metrics
    return metrics.averages(spec.metric, spec.stable_window, spec.panic_window, now)


def _without_data(
    spec: ScalingSpec, state: ScalerState, ready: int, waiting: int, now: float
) -> Decision:
    capacity = _excess_burst_capacity(spec, ready, 0.0)
    if state.initialized:
        since = state.last_data if state.last_data is not None else state.started
        silent = since is not None and now - since > spec.stable_window
        if silent and ready > 0 and waiting == 0:
            # Ready replicas that stop reporting are idle or unhealthy: do not hold them.
            state = replace(
                state, panic_since=None, last_over_threshold=None, max_panic_replicas=0, recent=()
            )
            return Decision(spec.bounded(0), capacity, False, Reason.NO_DATA_TIMEOUT, state)
        return Decision(KEEP, capacity, state.panicking, Reason.NO_DATA, state)
    initial = spec.bounded(spec.initial_scale)
    return Decision(initial, capacity, state.panicking, Reason.INITIAL_SCALE, state)


def _window_counts(
    spec: ScalingSpec, observed: Aggregates, ready: int, step: _Step
) -> tuple[int, int]:
    """Replica counts wanted by the stable and panic windows, rate-limited (steps 2-4)."""
    base = max(1, ready)
    most = math.ceil(spec.max_scale_up_rate * base)
    fewest = math.floor(base / spec.max_scale_down_rate)
    wanted_stable = _replicas_for(observed.stable, spec)
    wanted_panic = _replicas_for(observed.panic, spec)
    limited = min(max(wanted_stable, fewest), most)
    stable = step.change(wanted_stable, limited, Reason.SCALE_DOWN_LIMIT, Reason.SCALE_UP_LIMIT)
    panic = min(max(wanted_panic, fewest), most)
    if wanted_stable > 0:
        stable = step.change(stable, max(stable, spec.activation_scale), Reason.ACTIVATION_SCALE)
    if wanted_panic > 0:
        panic = max(panic, spec.activation_scale)
    return stable, panic


def _apply_panic(
    spec: ScalingSpec,
    state: ScalerState,
    observed: Aggregates,
    count: int,
    panic_count: int,
    ready: int,
    now: float,
    step: _Step,
) -> tuple[ScalerState, int]:
    """Enter, extend or leave panic mode; in panic hold the largest count (step 5)."""
    over = _replicas_for(observed.panic, spec) / max(1, ready) >= (
        spec.panic_threshold_percentage / 100.0
    )
    if over:
        state = replace(
            state,
            panic_since=now if state.panic_since is None else state.panic_since,
            last_over_threshold=now,
        )
    elif state.panicking:
        last_over = state.last_over_threshold if state.last_over_threshold is not None else now
        if now - last_over > spec.stable_window:
            state = replace(state, panic_since=None, last_over_threshold=None, max_panic_replicas=0)
    if not state.panicking:
        return state, count
    count = max(count, panic_count)
    held = max(state.max_panic_replicas, count)
    step.reason = Reason.PANIC_HOLD if held > count else Reason.PANIC
    return replace(state, max_panic_replicas=held), held


def _apply_delay(
    spec: ScalingSpec, state: ScalerState, count: int, now: float, step: _Step
) -> tuple[ScalerState, int]:
    """Hold the largest count of the last `scale_down_delay` seconds (step 6)."""
    if spec.scale_down_delay <= 0:
        return (replace(state, recent=()) if state.recent else state), count
    start = now - spec.scale_down_delay
    recent = (*((t, n) for t, n in state.recent if start < t <= now), (now, count))
    delayed = max(n for _, n in recent)
    return replace(state, recent=recent), step.change(count, delayed, Reason.SCALE_DOWN_DELAY)


def _apply_zero(
    spec: ScalingSpec, state: ScalerState, count: int, ready: int, now: float, step: _Step
) -> tuple[ScalerState, int]:
    """Let a count of zero stand only after the grace period without demand (step 8)."""
    if count > 0:
        return replace(state, last_demand=now), count
    if ready == 0:
        step.reason = Reason.AT_ZERO
        return state, 0
    idle_since = state.last_demand if state.last_demand is not None else state.started
    if idle_since is not None and now - idle_since < spec.scale_to_zero_grace_period:
        step.reason = Reason.GRACE_PERIOD
        return state, 1
    step.reason = Reason.SCALE_TO_ZERO
    return state, 0


def _excess_burst_capacity(spec: ScalingSpec, ready: int, observed_panic: float) -> float:
    if spec.target_burst_capacity == 0:
        return 0.0
    if spec.target_burst_capacity < 0:
        return -1.0
    total = ready * spec.target_total
    return float(math.floor(total - spec.target_burst_capacity - observed_panic))


def _replicas_for(value: float, spec: ScalingSpec) -> int:
    """ceil(value / target), with float noise (e.g. 140 / 70.00000000000001) rounded away."""
    return math.ceil(round(value / spec.target_per_replica, 6))
