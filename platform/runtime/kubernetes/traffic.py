"""SMI objects of a function: its TrafficSplit, TrafficTarget and HTTPRouteGroup.

The TrafficSplit sends the apex Service's traffic to one Service per revision; the
TrafficTarget says which workloads (by ServiceAccount) may call the function, over every
route of the function's HTTPRouteGroup. Shapes follow the SMI CRDs the chart ships.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fnmesh.platform.model.names import MAX_NAMESPACE_NAME, check_name
from fnmesh.platform.model.resources import Function
from fnmesh.platform.runtime.kubernetes.labels import (
    function_labels,
    metadata,
    service_account_name,
)

SPLIT_API_VERSION = "split.smi-spec.io/v1alpha4"
ACCESS_API_VERSION = "access.smi-spec.io/v1alpha3"
SPECS_API_VERSION = "specs.smi-spec.io/v1alpha4"
ALL_ROUTES = "all"
_IDENTITY = re.compile(r"^(?P<sa>[^.]+)\.(?P<ns>[^.]+)\.serviceaccount\.identity\.[^.].*$")


def make_traffic_split(
    function: Function,
    backends: Sequence[tuple[str, int]],
    *,
    api_version: str = SPLIT_API_VERSION,
) -> dict[str, Any]:
    """The TrafficSplit of ``function``: its apex Service to ``(service, weight)`` backends.

    ``api_version`` is the split version the cluster serves (ClusterConfig.split_api_version);
    v1alpha2 to v1alpha4 share this shape.
    """
    if not backends:
        raise ValueError(
            f"the TrafficSplit of {function.namespace}/{function.name} needs at "
            "least one backend: a revision's Service and its weight"
        )
    for index, (service, weight) in enumerate(backends):
        why = check_name(service, what="backend service", limit=63)
        if why:
            raise ValueError(f"backends[{index}]: {why}")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError(
                f"backends[{index}] ({service}): weight must be a whole number "
                f"of 0 or more, not {weight!r}"
            )
    if sum(weight for _, weight in backends) == 0:
        raise ValueError(
            f"the TrafficSplit of {function.namespace}/{function.name} has only "
            "zero weights: give at least one backend a weight above 0"
        )
    return {
        "apiVersion": api_version,
        "kind": "TrafficSplit",
        "metadata": metadata(function.name, function, function_labels(function.name)),
        "spec": {
            "service": function.name,
            "backends": [{"service": service, "weight": weight} for service, weight in backends],
        },
    }


def parse_identity(identity: str) -> tuple[str, str]:
    """``<sa>.<ns>.serviceaccount.identity.<trust domain>`` -> ``(sa, ns)``."""
    match = _IDENTITY.match(identity)
    if not match:
        raise ValueError(
            f"{identity!r} is not a mesh identity: expected "
            "'<serviceaccount>.<namespace>.serviceaccount.identity.<trust domain>' "
            "(e.g. 'fnmesh-gateway.fnmesh-system.serviceaccount.identity.fnmesh.local')"
        )
    account, namespace = match.group("sa"), match.group("ns")
    why = check_name(account, what="service account", limit=63) or check_name(
        namespace, what="namespace", limit=MAX_NAMESPACE_NAME
    )
    if why:
        raise ValueError(f"{identity!r}: {why}")
    return account, namespace


def make_traffic_target(function: Function, allowed: Sequence[str]) -> dict[str, Any]:
    """The TrafficTarget letting the workloads with ``allowed`` identities call ``function``.

    An empty ``allowed`` lets nobody in. Identities are deduplicated, order kept.
    """
    sources: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for index, identity in enumerate(allowed):
        try:
            account, namespace = parse_identity(identity)
        except ValueError as error:
            raise ValueError(f"allowed[{index}]: {error}") from None
        if (account, namespace) not in seen:
            seen.add((account, namespace))
            sources.append({"kind": "ServiceAccount", "name": account, "namespace": namespace})
    return {
        "apiVersion": ACCESS_API_VERSION,
        "kind": "TrafficTarget",
        "metadata": metadata(function.name, function, function_labels(function.name)),
        "spec": {
            "destination": {
                "kind": "ServiceAccount",
                "name": service_account_name(function),
                "namespace": function.namespace,
            },
            "rules": [{"kind": "HTTPRouteGroup", "name": function.name, "matches": [ALL_ROUTES]}],
            "sources": sources,
        },
    }


def make_http_route_group(function: Function) -> dict[str, Any]:
    """The routes a TrafficTarget grants: every path and method of the function."""
    return {
        "apiVersion": SPECS_API_VERSION,
        "kind": "HTTPRouteGroup",
        "metadata": metadata(function.name, function, function_labels(function.name)),
        "spec": {"matches": [{"name": ALL_ROUTES, "pathRegex": ".*", "methods": ["*"]}]},
    }
