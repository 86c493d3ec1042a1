"""What the CLI reads out of Function and Revision resources (plain JSON dicts).

Tolerant of missing fields: a resource the controller has not reached yet has no status.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FUNCTION_LABEL = "fnmesh.dev/function"


def section(resource: Any, key: str) -> dict[str, Any]:
    value = resource.get(key) if isinstance(resource, dict) else None
    return value if isinstance(value, dict) else {}


def name_of(resource: Any) -> str:
    return str(section(resource, "metadata").get("name") or "")


def namespace_of(resource: Any) -> str:
    return str(section(resource, "metadata").get("namespace") or "default")


def conditions(resource: Any) -> list[dict[str, Any]]:
    items = section(resource, "status").get("conditions")
    return [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []


def condition(resource: Any, kind: str = "Ready") -> dict[str, Any] | None:
    return next((c for c in conditions(resource) if c.get("type") == kind), None)


def ready(resource: Any) -> str:
    """The Ready condition's status: ``True``, ``False`` or ``Unknown``."""
    found = condition(resource)
    return str(found.get("status") or "Unknown") if found else "Unknown"


def traffic(function: Any) -> dict[str, int]:
    """Percent of traffic per revision name, from the function's status."""
    shares: dict[str, int] = {}
    items = section(function, "status").get("traffic")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("revision"):
            revision = str(item["revision"])
            shares[revision] = shares.get(revision, 0) + int(item.get("percent") or 0)
    return shares


def serving(function: Any) -> list[str]:
    """The revisions that take the function's traffic (else its latest ready one)."""
    shares = [name for name, percent in traffic(function).items() if percent > 0]
    if shares:
        return shares
    latest = section(function, "status").get("latestReadyRevision")
    return [str(latest)] if latest else []


def revision_function(revision: Any) -> str:
    labels = section(section(revision, "metadata"), "labels")
    return str(labels.get(FUNCTION_LABEL) or section(revision, "spec").get("function") or "")


def replica_counts(revisions: Iterable[Any]) -> tuple[int, int]:
    """Ready and desired replicas summed over ``revisions``."""
    ready_count = desired = 0
    for revision in revisions:
        status = section(revision, "status")
        ready_count += int(status.get("readyReplicas") or 0)
        desired += int(status.get("desiredReplicas") or 0)
    return ready_count, desired


def replicas(revision: Any) -> list[dict[str, Any]]:
    items = section(revision, "status").get("replicas")
    return [r for r in items if isinstance(r, dict)] if isinstance(items, list) else []


def function_url(function: Any, gateway: str) -> str:
    """The function's URL: as the platform reports it, else the gateway's path form."""
    url = section(function, "status").get("url")
    if url:
        return str(url)
    name, namespace = name_of(function), namespace_of(function)
    return invocation_url(gateway, name, namespace)


def invocation_url(gateway: str, name: str, namespace: str) -> str:
    """``<gateway>/fn/<name>/``, or ``<gateway>/fn/<name>.<ns>/`` outside ``default``."""
    target = name if namespace == "default" else f"{name}.{namespace}"
    return f"{gateway.rstrip('/')}/fn/{target}/"


def items(listing: Any) -> list[dict[str, Any]]:
    """The ``items`` of a ``...List`` answer."""
    found = listing.get("items") if isinstance(listing, dict) else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def newest_first(revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Revisions by name, newest first (names end in a zero-padded number)."""
    return sorted(revisions, key=name_of, reverse=True)


def scaling(revision: Any) -> dict[str, Any]:
    """How a revision is scaled, from its status: replica counts, the autoscaler's panic
    state and the reason of its last decision, and the last cold start in seconds."""
    status = section(revision, "status")
    panic = status.get("panic")
    cold = status.get("lastColdStartSeconds")
    return {
        "desired": int(status.get("desiredReplicas") or 0),
        "ready": int(status.get("readyReplicas") or 0),
        "panic": panic if isinstance(panic, bool) else None,
        "reason": str(status["scalingReason"]) if status.get("scalingReason") else None,
        "lastColdStart": float(cold) if isinstance(cold, int | float) else None,
    }
