"""What a function needs next, decided from the function and its revisions (pure).

Knative's Configuration + Route in one: a spec change (a new ``generation``) that changes
what a revision freezes stamps the next revision; a change of traffic or rollout settings
alone does not. Where requests go is decided by ``traffic`` (pinned weights, rollback and
promote requests, the immediate or canary rollout). Revisions that carry traffic or a
tag, and the newest one unless it was rolled back, are *active*: the autoscaler sizes
them (from their initial scale, down to zero when idle); every other revision is scaled
to zero, and old ones beyond the function's revision limit are deleted (``collect``).

Branch previews (revisions labelled ``fnmesh.dev/preview``) are stamped by the git
receiver; they are never the function's newest revision and only ever serve by tag.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from fnmesh.platform.controller.collect import DEFAULT_KEEP, collect
from fnmesh.platform.controller.rollout import PROGRESSING, ROLLED_BACK, Sample
from fnmesh.platform.controller.traffic import decide
from fnmesh.platform.model import (
    Condition,
    Function,
    FunctionStatus,
    ObjectMeta,
    Revision,
    TrafficTarget,
)
from fnmesh.platform.model.names import revision_name, revision_number
from fnmesh.platform.model.resources import (
    LABEL_COMMIT,
    LABEL_FUNCTION,
    LABEL_PREVIEW,
    RolloutStatus,
    condition,
    revision_spec_for,
    set_condition,
)
from fnmesh.platform.model.traffic import weights_of

ANNOTATION_GENERATION = "fnmesh.dev/generation"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Plan:
    create: Revision | None = None
    status: FunctionStatus = field(default_factory=FunctionStatus)
    traffic: list[TrafficTarget] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    requeue_after: float | None = None  # look again this many seconds on (a rollout step)


def is_ready(revision: Revision) -> bool:
    found = condition(revision.status.conditions, "Ready")
    return found is not None and found.status == "True"


def failure(revision: Revision) -> Condition | None:
    found = condition(revision.status.conditions, "Ready")
    return found if found is not None and found.status == "False" else None


def is_preview(revision: Revision) -> bool:
    return bool(revision.metadata.labels.get(LABEL_PREVIEW))


def plan(
    function: Function,
    revisions: list[Revision],
    *,
    url: str | None,
    now: str,
    clock: float | None = None,
    samples: Mapping[str, Sample] | None = None,
    keep: int = DEFAULT_KEEP,
) -> Plan:
    """The next step for ``function``. ``now`` stamps conditions; ``clock`` (seconds since
    the epoch, else read from ``now``) times the rollout; ``samples`` are the canary's
    metrics over the last interval, by revision name; ``keep`` bounds old revisions."""
    revisions = sorted(revisions, key=lambda r: revision_number(r.name) or 0)
    status = function.status
    generation = function.metadata.generation or 1
    create: Revision | None = None
    if function.spec.artifact is not None and status.observed_generation != generation:
        if _needs_revision(function, revisions, generation):
            highest = max(
                [status.revision_count, *(revision_number(r.name) or 0 for r in revisions)]
            )
            create = _stamp(function, highest + 1, generation)
            revisions = [*revisions, create]
        status = replace(status, observed_generation=generation)
    if function.spec.artifact is not None:
        status = replace(
            status,
            revision_count=max(
                status.revision_count, *(revision_number(r.name) or 0 for r in revisions)
            ),
        )
    releases = [r for r in revisions if not is_preview(r)]
    latest = releases[-1] if releases else None

    epoch = clock if clock is not None else _epoch(now)
    decided = decide(function, revisions, latest, now=epoch, samples=samples or {})
    traffic = decided.traffic
    latest_ready = next((r.name for r in reversed(releases) if is_ready(r)), None)

    held_back = _held_back(decided.rollout, latest)
    active = _active(traffic, latest, held_back)
    protected = {*active, *(n for n in _named(decided.rollout)), *([latest.name] if latest else [])}
    delete = collect(revisions, protected, keep)
    inactive = [r.name for r in revisions if r.name not in active and r.name not in delete]

    ready = _ready_condition(function, latest, traffic, held_back, now)
    conditions = set_condition(list(status.conditions), ready)
    conditions = _rollout_condition(conditions, decided.rollout, now)
    status = replace(
        status,
        latest_created_revision=latest.name if latest else None,
        latest_ready_revision=latest_ready,
        url=url,
        traffic=traffic,
        conditions=conditions,
        rollout=decided.rollout,
    )
    return Plan(
        create=create,
        status=status,
        traffic=traffic,
        active=active,
        inactive=inactive,
        delete=delete,
        requeue_after=decided.requeue_after,
    )


def active_revisions(status: FunctionStatus, revisions: list[Revision]) -> list[str]:
    """The revisions the autoscaler sizes, read off a status ``plan`` wrote: those carrying
    traffic or a tag, and the newest release unless its rollout was rolled back. ``plan``
    decides its ``active`` with this same rule, so a reader of the status (the autoscaler
    on a cluster) agrees with the controller without deciding anything itself."""
    releases = sorted(
        (r for r in revisions if not is_preview(r)), key=lambda r: revision_number(r.name) or 0
    )
    latest = releases[-1] if releases else None
    return _active(status.traffic, latest, _held_back(status.rollout, latest))


def _active(traffic: list[TrafficTarget], latest: Revision | None, held_back: bool) -> list[str]:
    tagged = [t.revision for t in traffic if t.tag]
    active = list(dict.fromkeys([*weights_of(traffic), *tagged]))
    if latest is not None and latest.name not in active and not held_back:
        active.append(latest.name)
    return active


def _held_back(state: RolloutStatus | None, latest: Revision | None) -> bool:
    """Whether the newest revision was rolled back (it waits for the next deploy)."""
    return (
        state is not None
        and state.phase == ROLLED_BACK
        and latest is not None
        and state.canary == latest.name
    )


def _needs_revision(function: Function, revisions: list[Revision], generation: int) -> bool:
    """Whether ``generation`` needs a revision of its own: not stamped yet, and it changes
    what the newest revision froze (traffic or rollout settings alone do not)."""
    if any(r.metadata.annotations.get(ANNOTATION_GENERATION) == str(generation) for r in revisions):
        return False
    releases = [r for r in revisions if not is_preview(r)]
    return not releases or releases[-1].spec != revision_spec_for(function)


def _named(state: RolloutStatus | None) -> list[str]:
    if state is None:
        return []
    return [state.canary, *([state.stable] if state.stable else [])]


def _epoch(now: str) -> float:
    try:
        return datetime.datetime.fromisoformat(now.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _stamp(function: Function, number: int, generation: int) -> Revision:
    labels = {LABEL_FUNCTION: function.name}
    commit = function.spec.artifact.commit if function.spec.artifact else None
    if commit and _LABEL_VALUE.match(commit[:63]):
        labels[LABEL_COMMIT] = commit[:63]
    meta = ObjectMeta(
        name=revision_name(function.name, number),
        namespace=function.namespace,
        labels=labels,
        annotations={ANNOTATION_GENERATION: str(generation)},
    )
    return Revision(metadata=meta, spec=revision_spec_for(function))


def _ready_condition(
    function: Function,
    latest: Revision | None,
    traffic: list[TrafficTarget],
    held_back: bool,
    now: str,
) -> Condition:
    if function.spec.artifact is None:
        return Condition(
            "Ready", "False", "NoSource", "no source deployed yet: run 'fn deploy'", now
        )
    if latest is None:
        return Condition("Ready", "Unknown", "RevisionPending", "stamping the first revision", now)
    failed = failure(latest)
    if failed is not None:
        return Condition(
            "Ready",
            "False",
            "RevisionFailed",
            f"revision {latest.name} failed: {failed.message}",
            now,
        )
    serving = ", ".join(f"{name} {percent}%" for name, percent in weights_of(traffic).items())
    if held_back:
        return Condition(
            "Ready", "True", "Serving", f"serving {serving} ({latest.name} rolled back)", now
        )
    if not is_ready(latest) and latest.name not in weights_of(traffic):
        return Condition(
            "Ready", "Unknown", "RevisionStarting", f"revision {latest.name} is starting", now
        )
    return Condition("Ready", "True", "Serving", f"serving {serving}", now)


def _rollout_condition(
    conditions: list[Condition], state: RolloutStatus | None, now: str
) -> list[Condition]:
    """``Rollout``: Unknown while progressing, True once promoted, False once rolled back."""
    if state is None:
        return [c for c in conditions if c.type != "Rollout"]
    value: Literal["True", "False", "Unknown"] = "True"
    if state.phase == PROGRESSING:
        value = "Unknown"
    elif state.phase == ROLLED_BACK:
        value = "False"
    return set_condition(
        conditions, Condition("Rollout", value, state.reason or state.phase, state.message, now)
    )
