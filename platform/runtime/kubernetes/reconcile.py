"""What the operator writes, decided from what it read (pure: objects and ``now`` in).

The controller's driver decides a function's revisions, traffic and status and writes
them through the store; this module builds the rest of a function's objects (its
account, apex Service and SMI access policy), names what a function leaves behind, and
reads a revision's state off its Deployment. ``workloads`` and ``operator`` do the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fnmesh.platform.controller.plan import is_ready
from fnmesh.platform.model import Condition, Function, Revision, RevisionStatus
from fnmesh.platform.model.resources import condition, set_condition
from fnmesh.platform.model.wire import to_wire
from fnmesh.platform.runtime.kubernetes.builders import (
    make_http_route_group,
    make_root_service,
    make_service_account,
    make_traffic_target,
)
from fnmesh.platform.runtime.kubernetes.labels import service_account_name
from fnmesh.platform.runtime.kubernetes.traffic import ACCESS_API_VERSION, SPECS_API_VERSION

Obj = dict[str, Any]


def initial_replicas(revision: Revision) -> int:
    """Replicas a new revision's Deployment starts with: the autoscaler's first size for it
    (``scale.initial``, 1 when unset, held within ``scale.min`` and ``scale.max``)."""
    scale = revision.spec.scale
    replicas = max(1 if scale.initial is None else scale.initial, scale.min)
    return min(replicas, scale.max) if scale.max > 0 else replicas


def owns_service_account(function: Function) -> bool:
    """Whether the function runs as an account of its own (one the operator manages)."""
    return service_account_name(function) == function.name


def function_objects(function: Function, allowed: Sequence[str]) -> list[Obj]:
    """A function's objects besides its revisions and TrafficSplit (which the controller
    writes through the store): its own account, apex Service and access policy."""
    objects = [make_root_service(function), make_http_route_group(function)]
    if owns_service_account(function):
        objects.insert(0, make_service_account(function))
    objects.append(make_traffic_target(function, allowed))
    return objects


def exposed_objects(name: str) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of what ``function_objects`` makes for function ``name``.
    The ServiceAccount is the function's only when it carries the function's label."""
    return [
        ("v1", "ServiceAccount", name),
        ("v1", "Service", name),
        (SPECS_API_VERSION, "HTTPRouteGroup", name),
        (ACCESS_API_VERSION, "TrafficTarget", name),
    ]


def revision_status_patch(status: RevisionStatus) -> Obj:
    """A merge patch of the parts of a revision's status the operator keeps (replica counts
    and conditions); other writers' fields stay as they are."""
    return {
        "desiredReplicas": status.desired_replicas,
        "readyReplicas": status.ready_replicas,
        "conditions": to_wire(status.conditions),
    }


def revision_status(revision: Revision, deployment: Obj | None, now: str) -> RevisionStatus:
    """The revision's replicas and Ready condition as its Deployment reports them.

    Ready is True while a replica is ready, and stays True when the revision is scaled to
    zero after having been ready (a request wakes it through the activator); False when
    the Deployment cannot make progress; Unknown while the first replicas start.
    """
    spec = (deployment or {}).get("spec") or {}
    observed = (deployment or {}).get("status") or {}
    desired = int(spec.get("replicas", 0) or 0)
    ready = int(observed.get("readyReplicas", 0) or 0)
    stuck = _stuck(observed.get("conditions") or [])
    if deployment is None:
        new = Condition("Ready", "Unknown", "Deploying", "the Deployment is being created", now)
    elif ready > 0:
        new = Condition("Ready", "True", "ReplicasReady", f"{ready} of {desired} ready", now)
    elif stuck is not None:
        new = Condition("Ready", "False", stuck[0], stuck[1], now)
    elif desired == 0:
        new = _scaled_to_zero(revision, now)
    else:
        new = Condition("Ready", "Unknown", "Starting", "replicas are starting", now)
    return replace(
        revision.status,
        desired_replicas=desired,
        ready_replicas=ready,
        conditions=set_condition(list(revision.status.conditions), new),
    )


def _scaled_to_zero(revision: Revision, now: str) -> Condition:
    message = "scaled to zero: the next request starts a replica"
    if is_ready(revision):
        return Condition("Ready", "True", "ScaledToZero", message, now)
    previous = condition(revision.status.conditions, "Ready")
    if previous is not None and previous.status == "False":
        return previous  # a failure stays visible until a replica is ready again
    return Condition("Ready", "Unknown", "ScaledToZero", message, now)


def _stuck(conditions: list[Obj]) -> tuple[str, str] | None:
    """(reason, message) when a Deployment condition says it cannot make progress."""
    for found in conditions:
        kind, status = found.get("type"), found.get("status")
        if (kind == "ReplicaFailure" and status == "True") or (
            kind == "Progressing" and status == "False"
        ):
            reason = str(found.get("reason") or kind)
            return reason, str(found.get("message") or f"the Deployment reports {reason}")
    return None
