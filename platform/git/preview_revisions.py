"""A branch preview served by tag: its own revision, at 0 % of the traffic.

A preview's build becomes a revision of the function (the next number, labelled
``fnmesh.dev/preview: <tag>`` and with its commit) frozen from the branch's ``fn.yaml``,
and ``spec.traffic`` gets the entry ``{revision, percent: 0, tag}``, so the gateway reaches
it at ``/fn/<name>@<tag>/`` and ``<tag>-<name>.<ns>.<domain>`` while the main branch keeps
every other request. The controller keeps a tagged revision running (from zero) and
deletes a preview revision once its tag is gone. ``preview_revision`` decides (pure); the
other functions write through the store, retrying when they lose a race.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from fnmesh.platform.git.previews import Preview
from fnmesh.platform.model import Artifact, Function, FunctionSpec, ObjectMeta, Revision
from fnmesh.platform.model.names import revision_name, revision_number
from fnmesh.platform.model.resources import (
    LABEL_COMMIT,
    LABEL_FUNCTION,
    LABEL_PREVIEW,
    TrafficTarget,
    revision_spec_for,
)
from fnmesh.platform.model.wire import to_wire
from fnmesh.platform.store import Conflict, NotFound

ATTEMPTS = 10


class PreviewStore(Protocol):
    """The store, as previews use it."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]: ...

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], int]: ...

    def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, obj: dict[str, Any]) -> dict[str, Any]: ...


def preview_revision(
    function: Function, revisions: list[Revision], preview: Preview, spec: FunctionSpec
) -> Revision:
    """The revision serving ``preview``: the function's next number, the branch's spec."""
    highest = max(
        [function.status.revision_count, *(revision_number(r.name) or 0 for r in revisions)]
    )
    artifact = Artifact(
        digest=preview.digest,
        environment=preview.environment,
        build=preview.build,
        commit=preview.commit,
    )
    frozen = revision_spec_for(replace(function, spec=replace(spec, artifact=artifact)))
    labels = {LABEL_FUNCTION: function.name, LABEL_PREVIEW: preview.tag}
    if preview.commit.isalnum():
        labels[LABEL_COMMIT] = preview.commit[:63]
    meta = ObjectMeta(
        name=revision_name(function.name, highest + 1),
        namespace=function.namespace,
        labels=labels,
    )
    return Revision(metadata=meta, spec=frozen)


def retagged(traffic: list[TrafficTarget], tag: str, revision: str | None) -> list[TrafficTarget]:
    """``traffic`` with ``tag`` on ``revision`` (None: without ``tag``)."""
    kept = []
    for target in traffic:
        if target.tag != tag:
            kept.append(target)
        elif target.percent > 0:
            kept.append(replace(target, tag=None))  # a pinned weight stays; the tag moves
    return [*kept, TrafficTarget(revision, 0, tag)] if revision else kept


def serve_preview(
    store: PreviewStore, namespace: str, name: str, preview: Preview, spec: FunctionSpec
) -> str | None:
    """Stamp the preview's revision and tag it; its name, or None when the function does not
    exist yet (its main branch was never deployed)."""
    for _ in range(ATTEMPTS):
        try:
            function = Function.from_dict(store.get("Function", namespace, name))
        except NotFound:
            return None
        items = store.list("Revision", namespace, {LABEL_FUNCTION: name})[0]
        revision = preview_revision(function, [Revision.from_dict(i) for i in items], preview, spec)
        try:
            store.create(revision.to_dict())
        except Conflict:
            continue  # the controller took that number: take the next
        if _tag(store, namespace, name, preview.tag, revision.name):
            return revision.name
    raise Conflict(f"function {namespace}/{name} kept changing while its preview was added")


def drop_preview(store: PreviewStore, namespace: str, name: str, tag: str) -> None:
    """Remove ``tag`` from the function; the controller then deletes the preview revision."""
    if not _tag(store, namespace, name, tag, None):
        raise Conflict(f"function {namespace}/{name} kept changing while its preview was removed")


def _tag(store: PreviewStore, namespace: str, name: str, tag: str, revision: str | None) -> bool:
    for _ in range(ATTEMPTS):
        try:
            function = Function.from_dict(store.get("Function", namespace, name))
        except NotFound:
            return True
        traffic = retagged(list(function.spec.traffic), tag, revision)
        if traffic == function.spec.traffic:
            return True
        body = function.to_dict()
        body["spec"]["traffic"] = to_wire(traffic)
        try:
            store.update(body)
        except Conflict:
            continue
        return True
    return False
