"""Where a function's requests go: weights per revision, tags, and the rollout state (pure).

In order of precedence:

1. weights pinned by hand in ``spec.traffic`` (entries with a percent) are used as they
   are; a rollout in progress waits;
2. a rollback or promote request (``commands``) not yet carried out is carried out;
3. a newest revision that has just become ready takes over: at once with the
   ``immediate`` strategy (or when nothing else serves), in canary steps with ``canary``;
4. a rollout in progress takes its next step (``rollout.analyse``), or rolls back at once
   when the canary revision fails;
5. otherwise the weights stay as they are.

Tags (``spec.traffic`` entries with a tag) are listed after the weights, at 0 % unless
pinned with a percent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fnmesh.platform.controller import rollout
from fnmesh.platform.controller.commands import carry_out, parse_command, primary
from fnmesh.platform.model import Function, Revision, TrafficTarget
from fnmesh.platform.model.resources import RolloutStatus, condition


@dataclass(frozen=True, slots=True)
class TrafficDecision:
    traffic: list[TrafficTarget]  # weighted entries first, then tag-only ones (0 %)
    rollout: RolloutStatus | None
    requeue_after: float | None = None  # seconds until the rollout's next check
    pinned: bool = False


def _ready(revision: Revision) -> bool:
    found = condition(revision.status.conditions, "Ready")
    return found is not None and found.status == "True"


def _failed(revision: Revision) -> str | None:
    found = condition(revision.status.conditions, "Ready")
    if found is None or found.status != "False":
        return None
    return found.message or found.reason or "it failed"


def decide(
    function: Function,
    revisions: Sequence[Revision],
    latest: Revision | None,
    *,
    now: float,
    samples: Mapping[str, rollout.Sample],
) -> TrafficDecision:
    """The traffic of ``function``; ``latest`` is its newest revision (not a preview)."""
    by_name = {r.name: r for r in revisions}
    spec = function.spec
    tags = [
        TrafficTarget(t.revision, 0, t.tag) for t in spec.traffic if t.tag and t.revision in by_name
    ]
    current = [t for t in function.status.traffic if t.percent > 0 and t.revision in by_name]
    state = function.status.rollout
    if state is not None and state.canary not in by_name:
        state = None  # its revision is gone
    command = parse_command(function.metadata.annotations)
    if (
        command is not None
        and latest is not None
        and command.latest == latest.name
        and (state is None or state.command != command.id)
    ):
        state = carry_out(command, latest, revisions, state, current, now) or state

    pinned = [t for t in spec.traffic if t.percent > 0 and t.revision in by_name]
    if pinned:
        pinned_tags = {t.tag for t in pinned if t.tag}
        extra = [t for t in tags if t.tag not in pinned_tags]
        return TrafficDecision([*pinned, *extra], state, pinned=True)

    if latest is not None and _ready(latest) and (state is None or state.canary != latest.name):
        stable = primary(current, besides=latest.name)
        if spec.rollout.strategy == "canary" and stable is not None:
            command_id = state.command if state is not None else None
            state = rollout.start(latest.name, stable, spec.rollout, now, command=command_id)
        else:
            state = None  # immediate: nothing to analyse
            current = [TrafficTarget(latest.name, 100)]

    if state is not None and state.phase == rollout.PROGRESSING:
        canary = by_name[state.canary]
        failed = _failed(canary)
        if failed is not None:
            state = rollout.roll_back(
                state, "RevisionFailed", f"revision {canary.name} failed: {failed}", now
            )
        elif state.stable is not None and state.stable not in by_name:
            state = rollout.promote(
                state, "StableGone", f"{state.stable} no longer exists; {canary.name} serves"
            )
        else:
            state = rollout.analyse(spec.rollout, state, samples.get(state.canary), now)

    if state is not None:
        weights = rollout.weights(state)
        if all(t.revision in by_name for t in weights):
            current = weights
        else:
            state = replace(state, message=f"{state.message or ''} (a revision is gone)".strip())
    requeue = rollout.due_in(spec.rollout, state, now) if state is not None else None
    return TrafficDecision([*current, *tags], state, requeue)
