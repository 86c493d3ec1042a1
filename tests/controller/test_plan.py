from dataclasses import replace

from fnmesh.platform.controller.plan import ANNOTATION_GENERATION, plan
from fnmesh.platform.model import (
    Artifact,
    Condition,
    Function,
    ObjectMeta,
    Revision,
    RevisionStatus,
    TrafficTarget,
    parse_manifest,
)
from fnmesh.platform.model.resources import condition, revision_spec_for

NOW = "2026-01-01T00:00:00Z"
DIGEST = "sha256:" + "a" * 64


def function(generation: int = 1, *, artifact: bool = True, **status: object) -> Function:
    base = parse_manifest("name: hello\nhandler: main:handle\n").function()
    spec = replace(base.spec, artifact=Artifact(digest=DIGEST) if artifact else None)
    fn = replace(base, spec=spec, metadata=replace(base.metadata, generation=generation))
    return fn.with_status(replace(fn.status, **status))  # type: ignore[arg-type]


def revision(n: int, ready: str | None = None, generation: int | None = None) -> Revision:
    meta = ObjectMeta(
        name=f"hello-{n:05d}",
        labels={"fnmesh.dev/function": "hello"},
        annotations={ANNOTATION_GENERATION: str(generation or n)},
    )
    conditions = [Condition("Ready", ready, "x", "why")] if ready else []  # type: ignore[arg-type]
    return Revision(
        metadata=meta,
        spec=revision_spec_for(function()),
        status=RevisionStatus(conditions=conditions),
    )


def ready_reason(fn: Function) -> tuple[str, str | None]:
    found = condition(fn.status.conditions, "Ready")
    assert found is not None
    return found.status, found.reason


def test_no_source_yet_means_nothing_to_run() -> None:
    decided = plan(function(artifact=False), [], url=None, now=NOW)
    assert decided.create is None
    assert decided.active == [] and decided.inactive == []
    assert ready_reason(function().with_status(decided.status)) == ("False", "NoSource")


def test_a_new_generation_stamps_the_next_revision_and_starts_it() -> None:
    decided = plan(function(1), [], url="u", now=NOW)
    assert decided.create is not None and decided.create.name == "hello-00001"
    assert decided.create.spec.artifact.digest == DIGEST
    assert decided.active == ["hello-00001"]
    assert decided.traffic == []
    assert decided.status.latest_created_revision == "hello-00001"
    assert decided.status.observed_generation == 1


def test_an_already_stamped_generation_is_adopted_not_stamped_twice() -> None:
    decided = plan(
        function(2), [revision(1, "True"), revision(2, None, generation=2)], url=None, now=NOW
    )
    assert decided.create is None
    assert decided.status.latest_created_revision == "hello-00002"


def test_a_ready_new_revision_takes_all_traffic_and_the_old_one_scales_to_zero() -> None:
    fn = function(2, observed_generation=2, traffic=[TrafficTarget("hello-00001", 100)])
    decided = plan(fn, [revision(1, "True"), revision(2, "True")], url=None, now=NOW)
    assert decided.traffic == [TrafficTarget("hello-00002", 100)]
    assert decided.active == ["hello-00002"]
    assert decided.inactive == ["hello-00001"]
    assert decided.status.latest_ready_revision == "hello-00002"
    assert ready_reason(fn.with_status(decided.status)) == ("True", "Serving")


def test_a_starting_revision_leaves_traffic_where_it_was() -> None:
    fn = function(2, observed_generation=2, traffic=[TrafficTarget("hello-00001", 100)])
    decided = plan(fn, [revision(1, "True"), revision(2, "Unknown")], url=None, now=NOW)
    assert decided.traffic == [TrafficTarget("hello-00001", 100)]
    assert decided.active == ["hello-00001", "hello-00002"]
    assert ready_reason(fn.with_status(decided.status)) == ("Unknown", "RevisionStarting")


def test_a_failed_revision_is_reported_and_the_old_one_keeps_serving() -> None:
    fn = function(2, observed_generation=2, traffic=[TrafficTarget("hello-00001", 100)])
    decided = plan(fn, [revision(1, "True"), revision(2, "False")], url=None, now=NOW)
    assert decided.traffic == [TrafficTarget("hello-00001", 100)]
    assert decided.status.latest_ready_revision == "hello-00001"
    status, reason = ready_reason(fn.with_status(decided.status))
    assert (status, reason) == ("False", "RevisionFailed")


def test_revision_numbers_never_repeat_after_deletes() -> None:
    fn = function(5, observed_generation=4, revision_count=7)
    redeployed = replace(fn, spec=replace(fn.spec, artifact=Artifact(digest="sha256:" + "b" * 64)))
    decided = plan(redeployed, [revision(7, "True")], url=None, now=NOW)
    assert decided.create is not None and decided.create.name == "hello-00008"
