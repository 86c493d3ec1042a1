"""SMI TrafficSplit objects (``split.smi-spec.io/v1alpha4``) for a function's traffic.

The split carries weights only: a revision reached by tag alone (0 %) is not a backend.
Tags live in ``Function.status.traffic``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fnmesh.platform.model.resources import Function, TrafficTarget

SPLIT_API_VERSION = "split.smi-spec.io/v1alpha4"


def weights_of(traffic: Iterable[TrafficTarget]) -> dict[str, int]:
    """Percent per revision, summed over entries, revisions with none left out."""
    weights: dict[str, int] = {}
    for target in traffic:
        if target.percent > 0:
            weights[target.revision] = weights.get(target.revision, 0) + target.percent
    return weights


def tags_of(traffic: Iterable[TrafficTarget]) -> dict[str, str]:
    """Tag -> revision, for the entries that carry a tag."""
    return {target.tag: target.revision for target in traffic if target.tag}


def make_traffic_split(function: Function, traffic: list[TrafficTarget]) -> dict[str, Any]:
    """The TrafficSplit for ``function``: its root service, one backend per weighted revision."""
    return {
        "apiVersion": SPLIT_API_VERSION,
        "kind": "TrafficSplit",
        "metadata": {
            "name": function.name,
            "namespace": function.namespace,
            "labels": {"fnmesh.dev/function": function.name},
        },
        "spec": {
            "service": function.name,
            "backends": [
                {"service": name, "weight": weight} for name, weight in weights_of(traffic).items()
            ],
        },
    }


def split_weights(split: dict[str, Any]) -> list[tuple[str, int]]:
    backends = (split.get("spec") or {}).get("backends") or []
    return [(str(b["service"]), int(b["weight"])) for b in backends]


def pick_weighted(backends: Sequence[tuple[str, int]], roll: float) -> str | None:
    """The backend whose cumulative weight covers ``roll`` in [0, 1)."""
    total = sum(weight for _, weight in backends if weight > 0)
    if total <= 0:
        return None
    point = roll * total
    for name, weight in backends:
        if weight <= 0:
            continue
        if point < weight:
            return name
        point -= weight
    return next(name for name, weight in reversed(backends) if weight > 0)
