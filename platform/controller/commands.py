"""Rollback and promote: requests a person makes, carried out by the controller (pure).

The API records a request on the Function as the annotation ``fnmesh.dev/rollout-command``
(``{"id", "action", "latest", "revision"}``) and the controller, the only writer of a
Function's status, carries it out once: ``status.rollout.command`` holds the id of the
last request done. A request names the newest revision it was made against (``latest``);
once a newer revision exists it no longer applies.

``rollback_target`` and ``refusal`` are shared with the API, so a request it accepts is
one the controller can carry out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from fnmesh.platform.controller.rollout import PROGRESSING, promote, roll_back
from fnmesh.platform.model import Revision, TrafficTarget
from fnmesh.platform.model.names import revision_number
from fnmesh.platform.model.resources import RolloutStatus, condition
from fnmesh.platform.model.traffic import weights_of

ANNOTATION_COMMAND = "fnmesh.dev/rollout-command"
Action = Literal["rollback", "promote"]


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    action: Action
    latest: str  # the newest revision when the request was made
    revision: str | None = None  # rollback: the revision to go back to

    def encode(self) -> str:
        body = {"id": self.id, "action": self.action, "latest": self.latest}
        if self.revision:
            body["revision"] = self.revision
        return json.dumps(body, sort_keys=True)


def parse_command(annotations: Mapping[str, str]) -> Command | None:
    """The request recorded on a Function; None when there is none or it is unreadable."""
    raw = annotations.get(ANNOTATION_COMMAND)
    if not raw:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("action") not in ("rollback", "promote"):
        return None
    ident, latest, revision = body.get("id"), body.get("latest"), body.get("revision")
    if not isinstance(ident, str) or not isinstance(latest, str):
        return None
    return Command(ident, body["action"], latest, revision if isinstance(revision, str) else None)


def servable(revision: Revision) -> bool:
    """Ready, or scaled to zero after being ready (a request wakes it)."""
    found = condition(revision.status.conditions, "Ready")
    if found is None:
        return False
    return found.status == "True" or (found.status == "Unknown" and found.reason == "ScaledToZero")


def primary(traffic: Sequence[TrafficTarget], *, besides: str | None = None) -> str | None:
    """The revision with the largest share of ``traffic`` (other than ``besides``)."""
    weights = {name: w for name, w in weights_of(traffic).items() if name != besides}
    if not weights:
        return None
    return max(weights, key=lambda name: (weights[name], name))


def rollback_target(
    state: RolloutStatus | None, traffic: Sequence[TrafficTarget], revisions: Sequence[Revision]
) -> str | None:
    """Where a rollback goes by default: the rollout's stable revision while the newest one
    is rolling out, else the newest servable revision older than the one serving most."""
    by_name = {r.name: r for r in revisions}
    if state is not None and state.phase != "RolledBack" and state.stable in by_name:
        return state.stable
    serving = primary(traffic)
    if serving is None:
        return None
    before = _number(serving)
    older = [r for r in revisions if _number(r.name) < before and servable(r)]
    return max(older, key=lambda r: _number(r.name)).name if older else None


def _number(name: str) -> int:
    return revision_number(name) or 0


def refusal(
    command: Command,
    latest: Revision | None,
    revisions: Sequence[Revision],
    state: RolloutStatus | None,
    traffic: Sequence[TrafficTarget],
) -> str | None:
    """Why ``command`` cannot be carried out; None when it can."""
    if latest is None:
        return "the function has no revision yet: deploy it first"
    if command.latest != latest.name:
        return f"{latest.name} was deployed since the request was made; ask again"
    if command.action == "promote":
        if not servable(latest):
            return f"{latest.name} is not ready, so it cannot take all the traffic"
        return None
    target = command.revision or rollback_target(state, traffic, revisions)
    if target is None:
        return "there is no earlier ready revision to roll back to"
    found = next((r for r in revisions if r.name == target), None)
    if found is None:
        return f"revision {target} does not exist (`fn revisions` lists them)"
    if target == latest.name:
        return f"{target} is the newest revision: use `fn promote` to send it all the traffic"
    if not servable(found):
        ready = condition(found.status.conditions, "Ready")
        why = f": {ready.message}" if ready is not None and ready.message else ""
        return f"revision {target} is not ready to serve{why}"
    return None


def carry_out(
    command: Command,
    latest: Revision,
    revisions: Sequence[Revision],
    state: RolloutStatus | None,
    traffic: Sequence[TrafficTarget],
    now: float,
) -> RolloutStatus | None:
    """The rollout state once ``command`` is done. A refused command leaves the state as it
    was, with the refusal as its message (nothing, when there is no rollout state)."""
    problem = refusal(command, latest, revisions, state, traffic)
    if problem is not None:
        if state is None:
            return None
        return replace(state, command=command.id, message=f"{command.action} refused: {problem}")
    if command.action == "promote":
        base = state if state is not None and state.canary == latest.name else None
        stable = base.stable if base else primary(traffic, besides=latest.name)
        current = base or RolloutStatus(canary=latest.name, stable=stable, last_step=now)
        done = promote(current, "PromotedByHand", f"{latest.name} promoted to 100% by hand")
        return replace(done, command=command.id)
    target = command.revision or rollback_target(state, traffic, revisions)
    assert target is not None  # refusal() said so
    base = RolloutStatus(
        canary=latest.name,
        stable=target,
        failed_checks=state.failed_checks if state and state.canary == latest.name else 0,
        phase=PROGRESSING,
    )
    done = roll_back(base, "RolledBackByHand", f"rolled back to {target} by hand", now)
    return replace(done, command=command.id)
