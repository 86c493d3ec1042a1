"""What the operator writes, decided from what it read (pure: objects and ``now`` in).

The controller's ``plan`` decides a function's next revision, traffic and status; this
module turns that plan into the cluster's objects, reads a revision's state off its
Deployment, and says which revisions to scale to zero. The driver (``operator``) reads
the cluster, calls these, and writes the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from fnmesh.platform.controller.plan import Plan, is_ready
from fnmesh.platform.model import Condition, Function, FunctionStatus, Revision, RevisionStatus
from fnmesh.platform.model.resources import condition, set_condition
from fnmesh.platform.model.wire import camel, to_wire
from fnmesh.platform.runtime.kubernetes.builders import (
    make_http_route_group,
    make_root_service,
    make_service_account,
    make_traffic_split,
    make_traffic_target,
)
from fnmesh.platform.runtime.kubernetes.config import ClusterConfig
from fnmesh.platform.runtime.kubernetes.labels import owner_reference, service_account_name
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


def new_revision(function: Function, decided: Plan) -> Obj | None:
    """The Revision to create, owned by ``function`` (which must come from the cluster)."""
    if decided.create is None:
        return None
    body = decided.create.to_dict()
    body.pop("status", None)
    body["metadata"]["ownerReferences"] = [owner_reference(function)]
    return body


def function_objects(
    function: Function, decided: Plan, cfg: ClusterConfig, allowed: Sequence[str]
) -> list[Obj]:
    """Every object of a whole function: account, apex Service, access policy, split.

    The TrafficSplit is left out until some revision carries traffic.
    """
    objects = [make_root_service(function), make_http_route_group(function)]
    if owns_service_account(function):
        objects.insert(0, make_service_account(function))
    objects.append(make_traffic_target(function, allowed))
    weights: dict[str, int] = {}
    for target in decided.traffic:
        weights[target.revision] = weights.get(target.revision, 0) + target.percent
    backends = [(name, weight) for name, weight in weights.items() if weight > 0]
    if backends:
        objects.append(make_traffic_split(function, backends, api_version=cfg.split_api_version))
    return objects


def owned_by_function(function: Function, cfg: ClusterConfig) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of what ``function`` owns besides its Revisions."""
    owned = [
        ("v1", "Service", function.name),
        (SPECS_API_VERSION, "HTTPRouteGroup", function.name),
        (ACCESS_API_VERSION, "TrafficTarget", function.name),
        (cfg.split_api_version, "TrafficSplit", function.name),
    ]
    if owns_service_account(function):
        owned.insert(0, ("v1", "ServiceAccount", service_account_name(function)))
    return owned


def retired(decided: Plan) -> list[str]:
    """Revisions the plan scales to zero: neither the newest nor carrying traffic."""
    return sorted(decided.inactive)


def status_patch(status: FunctionStatus) -> Obj:
    """A merge patch of a function's status that also clears the fields it no longer has."""
    patch: Obj = {camel(f.name): None for f in fields(status)}
    patch.update(to_wire(status))
    return patch


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
