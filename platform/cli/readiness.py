"""Has a deploy's own revision come up? A pure verdict over the Function and its revisions.

After a successful build the API answers with the build id and the Function's new
``generation``; the controller then stamps a revision that carries the build id in
``spec.artifact.build``, and the runtime starts it. The verdict follows that revision
and no other: a later deploy's revision never answers for this one.

- ``ready``: this upload's revision has ready replicas (its Ready condition is True);
- ``failed``: its Ready condition is False (the replicas do not start);
- ``superseded``: no revision will ever serve this upload -- the controller has seen a
  later generation and stamped nothing from this build, or a newer revision replaced
  this one and it was scaled down before it was seen ready;
- ``waiting``: none of these yet.

Read the Function before its revisions: a revision is created before the status that
says it was, so a status that has caught up implies the revision is in the listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fnmesh.platform.cli.views import condition, name_of, section

State = Literal["waiting", "ready", "failed", "superseded"]
PREVIEW = "fnmesh.dev/preview"


@dataclass(frozen=True, slots=True)
class Verdict:
    state: State
    revision: str | None = None
    reason: str = ""
    message: str = ""


def build_of(revision: Any) -> str | None:
    artifact = section(section(revision, "spec"), "artifact")
    found = artifact.get("build")
    return str(found) if found else None


def number(revision: Any) -> int:
    tail = name_of(revision).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def verdict(function: Any, revisions: list[dict[str, Any]], build: str, generation: int) -> Verdict:
    """Where the revision stamped from ``build`` (a deploy that made ``generation``) is."""
    mine = sorted((r for r in revisions if build_of(r) == build), key=number)
    if mine:
        return _of_revision(mine[0], revisions)
    observed = section(function, "status").get("observedGeneration")
    if isinstance(observed, int) and observed >= generation:
        return Verdict(
            "superseded",
            message=(
                f"no revision was stamped from build {build}: a later change to the function "
                "replaced it before the controller got to it (or its revision was already "
                "removed)"
            ),
        )
    return Verdict("waiting")


def _of_revision(revision: dict[str, Any], revisions: list[dict[str, Any]]) -> Verdict:
    name = name_of(revision)
    ready = condition(revision) or {}
    if ready.get("status") == "True":
        return Verdict("ready", name)
    if ready.get("status") == "False":
        return Verdict(
            "failed", name, str(ready.get("reason") or ""), str(ready.get("message") or "")
        )
    newer = [
        r
        for r in revisions
        if number(r) > number(revision)
        and not section(section(r, "metadata"), "labels").get(PREVIEW)
    ]
    if newer and ready.get("reason") == "ScaledToZero":
        latest = name_of(max(newer, key=number))
        return Verdict(
            "superseded",
            name,
            message=(
                f"revision {name} (from this upload) was replaced by the newer {latest} "
                "and scaled down before it was seen ready"
            ),
        )
    return Verdict("waiting", name)
