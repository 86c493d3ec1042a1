"""Building blocks of the rollout tests: functions, revisions and metric samples."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fnmesh.platform.controller.plan import ANNOTATION_GENERATION, Plan, plan
from fnmesh.platform.model import (
    Artifact,
    Condition,
    Function,
    ObjectMeta,
    Revision,
    RevisionStatus,
    RolloutSpec,
    TrafficTarget,
    parse_manifest,
)
from fnmesh.platform.model.resources import LABEL_PREVIEW, revision_spec_for

NOW = "2026-01-01T00:00:00Z"
T0 = 1_800_000_000.0


def digest(n: int) -> str:
    return "sha256:" + f"{n:x}" * 64


@dataclass(frozen=True)
class Sample:
    requests: int
    success_rate: float | None
    p99_ms: float | None


def healthy(requests: int = 100) -> Sample:
    return Sample(requests, 1.0, 20.0)


def erroring(fraction: float, requests: int = 1000) -> Sample:
    return Sample(requests, 1.0 - fraction, 20.0)


CANARY = RolloutSpec(
    strategy="canary", step_weight=10, max_weight=50, interval=30.0, threshold=3, min_requests=20
)


def function(
    version: int = 1,
    *,
    rollout: RolloutSpec = CANARY,
    traffic: list[TrafficTarget] | None = None,
    annotations: dict[str, str] | None = None,
    commit: str | None = None,
) -> Function:
    base = parse_manifest("name: hello\nhandler: main:handle\n").function()
    spec = replace(
        base.spec,
        artifact=Artifact(digest=digest(version), commit=commit),
        rollout=rollout,
        traffic=traffic or [],
    )
    meta = replace(base.metadata, generation=version, annotations=annotations or {})
    return replace(base, spec=spec, metadata=meta)


def revision(
    n: int,
    ready: str | None = "True",
    *,
    reason: str = "ReplicasReady",
    message: str = "ok",
    preview: str | None = None,
) -> Revision:
    labels = {"fnmesh.dev/function": "hello"}
    if preview:
        labels[LABEL_PREVIEW] = preview
    meta = ObjectMeta(
        name=f"hello-{n:05d}", labels=labels, annotations={ANNOTATION_GENERATION: str(n)}
    )
    conditions = [Condition("Ready", ready, reason, message)] if ready else []  # type: ignore[arg-type]
    return Revision(
        metadata=meta,
        spec=revision_spec_for(function(n)),
        status=RevisionStatus(conditions=conditions),
    )


def step(
    fn: Function,
    revisions: list[Revision],
    at: float,
    sample: Sample | None = None,
    **options: Any,
) -> tuple[Function, Plan]:
    """Plan at ``at`` with ``sample`` as the canary's metrics; the function with its new status."""
    state = fn.status.rollout
    samples = {state.canary: sample} if state is not None and sample is not None else {}
    decided = plan(fn, revisions, url=None, now=NOW, clock=at, samples=samples, **options)
    return fn.with_status(decided.status), decided


def weights(fn: Function) -> dict[str, int]:
    return {t.revision: t.percent for t in fn.status.traffic if t.percent > 0}
