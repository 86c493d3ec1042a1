"""What a function needs next, decided from the function and its revisions (pure).

Knative's Configuration + Route in one: a spec change (a new ``generation``) with an
artifact stamps the next revision; once the newest revision is ready, it takes all the
traffic (the immediate rollout). Revisions that carry traffic, and the newest one while
it starts, are *active*: the autoscaler sizes them (from their initial scale, down to
zero when idle); every other revision is scaled to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
    LABEL_FUNCTION,
    condition,
    revision_spec_for,
    set_condition,
)

ANNOTATION_GENERATION = "fnmesh.dev/generation"


@dataclass(frozen=True, slots=True)
class Plan:
    create: Revision | None = None
    status: FunctionStatus = field(default_factory=FunctionStatus)
    traffic: list[TrafficTarget] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)


def is_ready(revision: Revision) -> bool:
    found = condition(revision.status.conditions, "Ready")
    return found is not None and found.status == "True"


def failure(revision: Revision) -> Condition | None:
    found = condition(revision.status.conditions, "Ready")
    return found if found is not None and found.status == "False" else None


def plan(function: Function, revisions: list[Revision], *, url: str | None, now: str) -> Plan:
    revisions = sorted(revisions, key=lambda r: revision_number(r.name) or 0)
    status = function.status
    generation = function.metadata.generation or 1
    create: Revision | None = None
    if function.spec.artifact is not None and status.observed_generation != generation:
        adopted = next(
            (
                r
                for r in revisions
                if r.metadata.annotations.get(ANNOTATION_GENERATION) == str(generation)
            ),
            None,
        )
        if adopted is None:
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
    latest = revisions[-1] if revisions else None
    by_name = {r.name: r for r in revisions}

    traffic = [t for t in status.traffic if t.revision in by_name]
    if latest is not None and is_ready(latest):
        traffic = [TrafficTarget(revision=latest.name, percent=100)]
    latest_ready = next((r.name for r in reversed(revisions) if is_ready(r)), None)

    active = [t.revision for t in traffic if t.percent > 0]
    if latest is not None and latest.name not in active:
        active.append(latest.name)
    inactive = [r.name for r in revisions if r.name not in active]

    ready = _ready_condition(function, latest, traffic, by_name, now)
    status = replace(
        status,
        latest_created_revision=latest.name if latest else None,
        latest_ready_revision=latest_ready,
        url=url,
        traffic=traffic,
        conditions=set_condition(list(status.conditions), ready),
    )
    return Plan(create=create, status=status, traffic=traffic, active=active, inactive=inactive)


def _stamp(function: Function, number: int, generation: int) -> Revision:
    meta = ObjectMeta(
        name=revision_name(function.name, number),
        namespace=function.namespace,
        labels={LABEL_FUNCTION: function.name},
        annotations={ANNOTATION_GENERATION: str(generation)},
    )
    return Revision(metadata=meta, spec=revision_spec_for(function))


def _ready_condition(
    function: Function,
    latest: Revision | None,
    traffic: list[TrafficTarget],
    by_name: dict[str, Revision],
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
    if not is_ready(latest):
        return Condition(
            "Ready", "Unknown", "RevisionStarting", f"revision {latest.name} is starting", now
        )
    serving = ", ".join(f"{t.revision} {t.percent}%" for t in traffic)
    return Condition("Ready", "True", "Serving", f"serving {serving}", now)
