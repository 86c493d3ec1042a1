"""SMI TrafficSplit objects (``split.smi-spec.io/v1alpha4``) for a function's traffic."""

from __future__ import annotations

from typing import Any

from fnmesh.platform.model.resources import Function, TrafficTarget

SPLIT_API_VERSION = "split.smi-spec.io/v1alpha4"


def make_traffic_split(function: Function, traffic: list[TrafficTarget]) -> dict[str, Any]:
    """The TrafficSplit for ``function``: its root service, one backend per revision."""
    weights: dict[str, int] = {}
    for target in traffic:
        weights[target.revision] = weights.get(target.revision, 0) + target.percent
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
            "backends": [{"service": name, "weight": weight} for name, weight in weights.items()],
        },
    }


def split_weights(split: dict[str, Any]) -> list[tuple[str, int]]:
    backends = (split.get("spec") or {}).get("backends") or []
    return [(str(b["service"]), int(b["weight"])) for b in backends]
