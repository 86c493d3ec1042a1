"""What the CLI shows of traffic, tags and rollouts (pure: JSON resources in, text out).

``progress`` reads a Function's status and says where its rollout stands; ``fn rollout``
prints it when it changes and exits on the verdict. ``traffic_spec`` turns the traffic
options of ``fn traffic`` into the new ``spec.traffic``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fnmesh.platform.cli.errors import UsageError
from fnmesh.platform.cli.output import NONE, table
from fnmesh.platform.cli.views import condition, name_of, ready, section, traffic

# the CLI imports no model or controller code (it must start fast): it names these itself
COMMIT_LABEL = "fnmesh.dev/commit"
ANNOTATION_COMMAND = "fnmesh.dev/rollout-command"
State = Literal["waiting", "progressing", "promoted", "rolled back", "failed"]


def tags(function: Any) -> dict[str, list[str]]:
    """Revision -> its tags, from the function's status."""
    found: dict[str, list[str]] = {}
    for item in _traffic_items(section(function, "status")):
        if item.get("tag"):
            found.setdefault(str(item["revision"]), []).append(str(item["tag"]))
    return found


def _traffic_items(holder: dict[str, Any]) -> list[dict[str, Any]]:
    items = holder.get("traffic")
    return [i for i in items if isinstance(i, dict) and i.get("revision")] if items else []


def commit_of(revision: Any) -> str | None:
    labels = section(section(revision, "metadata"), "labels")
    commit = labels.get(COMMIT_LABEL) or section(section(revision, "spec"), "artifact").get(
        "commit"
    )
    return str(commit)[:12] if commit else None


def revision_rows(function: Any, revisions: list[dict[str, Any]]) -> list[list[object]]:
    """NAME, READY, REPLICAS, TRAFFIC, TAGS, COMMIT of each revision."""
    shares, tagged = traffic(function), tags(function)
    rows: list[list[object]] = []
    for revision in revisions:
        name, status = name_of(revision), section(revision, "status")
        rows.append(
            [
                name,
                ready(revision),
                f"{status.get('readyReplicas') or 0}/{status.get('desiredReplicas') or 0}",
                f"{shares.get(name, 0)}%",
                ",".join(tagged.get(name, [])) or None,
                commit_of(revision),
            ]
        )
    return rows


def traffic_table(function: Any, gateway: str) -> str:
    """The function's traffic: each revision's share and tags, and where a tag reaches it."""
    shares, tagged = traffic(function), tags(function)
    names = list(dict.fromkeys([*shares, *tagged]))
    base = gateway.rstrip("/")
    name = name_of(function)
    namespace = str(section(function, "metadata").get("namespace") or "default")
    target = name if namespace == "default" else f"{name}.{namespace}"
    rows = [
        [
            revision,
            f"{shares.get(revision, 0)}%",
            ",".join(tagged.get(revision, [])) or None,
            " ".join(f"{base}/fn/{target}@{tag}/" for tag in tagged.get(revision, [])) or None,
        ]
        for revision in names
    ]
    if not rows:
        return "no traffic yet: the function has no ready revision"
    return table(["REVISION", "PERCENT", "TAGS", "TAG URL"], rows)


def pinned(function: Any) -> bool:
    return any(int(i.get("percent") or 0) > 0 for i in _traffic_items(section(function, "spec")))


@dataclass(frozen=True, slots=True)
class Progress:
    state: State
    line: str


def progress(function: Any) -> Progress:
    """Where the rollout of the function's newest revision stands."""
    status = section(function, "status")
    latest = status.get("latestCreatedRevision")
    shares = traffic(function)
    rollout = section(status, "rollout")
    share_text = ", ".join(f"{name} {pct}%" for name, pct in shares.items() if pct) or NONE
    if not latest:
        return Progress("waiting", "no revision yet: deploy the function first")
    found = condition(function)
    if found and found.get("status") == "False" and found.get("reason") == "RevisionFailed":
        return Progress("failed", f"{latest} failed: {found.get('message') or ''}".rstrip(": "))
    if rollout.get("canary") == latest:
        phase = rollout.get("phase")
        reason = rollout.get("reason") or phase
        message = rollout.get("message") or ""
        checks = f"{rollout.get('failedChecks') or 0} failed checks"
        line = f"{share_text} [{phase}: {reason}; {checks}] {message}".rstrip()
        if phase == "Promoted":
            return Progress("promoted", line)
        if phase == "RolledBack":
            return Progress("rolled back", line)
        return Progress("progressing", line)
    if shares.get(latest) == 100:
        return Progress("promoted", f"{share_text} [{latest} serves all traffic]")
    if pinned(function):
        return Progress("waiting", f"{share_text} [weights pinned by hand: `fn traffic --auto`]")
    return Progress("waiting", f"{share_text} [waiting for {latest} to become ready]")


def command_done(function: Any, ident: str) -> bool:
    """Whether the controller has carried out the rollback or promote request ``ident``."""
    return section(section(function, "status"), "rollout").get("command") == ident


def command_id(function: Any) -> str | None:
    """The id of the rollback or promote request recorded on the function."""
    raw = section(section(function, "metadata"), "annotations").get(ANNOTATION_COMMAND)
    try:
        found = json.loads(raw) if raw else None
    except ValueError:
        return None
    return str(found["id"]) if isinstance(found, dict) and found.get("id") else None


def revision_name(function: str, given: str) -> str:
    """A revision as given on the command line: its name, or just its number."""
    return f"{function}-{int(given):05d}" if given.isdigit() else given


def traffic_spec(
    function: Any,
    *,
    weights: Sequence[str] = (),
    tag: Sequence[str] = (),
    untag: Sequence[str] = (),
    auto: bool = False,
) -> list[dict[str, Any]]:
    """The new ``spec.traffic`` from ``--set REV=PCT``, ``--tag TAG=REV``, ``--untag TAG``."""
    name = name_of(function)
    current = _traffic_items(section(function, "spec"))
    pins = [
        {"revision": str(i["revision"]), "percent": int(i["percent"])}
        for i in current
        if int(i.get("percent") or 0) > 0
    ]
    tagged = {str(i["tag"]): str(i["revision"]) for i in current if i.get("tag")}
    if auto:
        pins = []
    if weights:
        pins = []
        for item in weights:
            revision, sep, percent = item.partition("=")
            if not sep or not revision or not percent.strip().rstrip("%").isdigit():
                raise UsageError(f"--set {item!r}: write REVISION=PERCENT, e.g. {name}-00002=20")
            pins.append(
                {
                    "revision": revision_name(name, revision),
                    "percent": int(percent.strip().rstrip("%")),
                }
            )
    for item in untag:
        if item not in tagged:
            known = ", ".join(sorted(tagged)) or "none"
            raise UsageError(f"--untag {item!r}: {name} has no such tag (its tags: {known})")
        del tagged[item]
    for item in tag:
        label, sep, revision = item.partition("=")
        if not sep or not label or not revision:
            raise UsageError(f"--tag {item!r}: write TAG=REVISION, e.g. next={name}-00002")
        tagged[label] = revision_name(name, revision)
    return [*pins, *({"revision": r, "percent": 0, "tag": t} for t, r in tagged.items())]
