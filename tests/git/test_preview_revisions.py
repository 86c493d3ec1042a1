"""Preview revisions: numbering, what they freeze, and how tags move (pure parts)."""

from __future__ import annotations

from dataclasses import replace

from fnmesh.platform.git.preview_revisions import preview_revision, retagged
from fnmesh.platform.git.previews import Preview
from fnmesh.platform.model import Artifact, ObjectMeta, Revision, TrafficTarget, parse_manifest
from fnmesh.platform.model.resources import revision_spec_for

MAIN = parse_manifest("name: hello\nhandler: main:handle\nenv: {MODE: main}\n")
BRANCH = parse_manifest("name: hello\nhandler: app:run\nenv: {MODE: preview}\n")
PREVIEW = Preview("feature/x", "feature-x", "c" * 40, "b-1", "sha256:" + "d" * 64, None, "app:run")


def test_a_preview_takes_the_next_number_and_the_branch_spec() -> None:
    function = MAIN.function()
    function = replace(
        function,
        spec=replace(function.spec, artifact=Artifact("sha256:" + "a" * 64)),
        status=replace(function.status, revision_count=7),
    )
    existing = [
        Revision(ObjectMeta("hello-00003"), revision_spec_for(function)),
        Revision(ObjectMeta("hello-00009"), revision_spec_for(function)),
    ]
    revision = preview_revision(function, existing, PREVIEW, BRANCH.spec)
    assert revision.name == "hello-00010"
    assert revision.metadata.labels == {
        "fnmesh.dev/function": "hello",
        "fnmesh.dev/preview": "feature-x",
        "fnmesh.dev/commit": "c" * 40,
    }
    assert (revision.spec.handler, revision.spec.env) == ("app:run", {"MODE": "preview"})
    assert revision.spec.artifact.digest == PREVIEW.digest
    assert revision.spec.artifact.commit == PREVIEW.commit
    assert preview_revision(function, [], PREVIEW, BRANCH.spec).name == "hello-00008"


def test_tags_move_and_pinned_weights_stay() -> None:
    traffic = [
        TrafficTarget("hello-00001", 100, "feature-x"),
        TrafficTarget("hello-00002", 0, "other"),
    ]
    assert retagged(traffic, "feature-x", "hello-00003") == [
        TrafficTarget("hello-00001", 100),
        TrafficTarget("hello-00002", 0, "other"),
        TrafficTarget("hello-00003", 0, "feature-x"),
    ]
    assert retagged(traffic, "other", None) == [TrafficTarget("hello-00001", 100, "feature-x")]
    assert retagged([], "x", None) == []
