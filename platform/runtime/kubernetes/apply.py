"""The operator's reads and writes of cluster objects (blocking calls, short timeouts).

``Cluster`` addresses any object the builders make by its ``apiVersion`` and ``kind``.
``apply`` makes an object exist as built: it creates it, or merge-patches what exists with
the built fields (labels, owner references, spec...), which leaves alone whatever other
writers own -- a Deployment's ``spec.replicas`` set by the autoscaler, a Service's
cluster IP. An object that already holds every built field is not written at all, so a
reconcile that changes nothing costs reads only. Deletes treat 404 as done.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fnmesh.platform.store.errors import Conflict, NotFound
from fnmesh.platform.store.kubernetes import KubeClient, Resource

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"

FUNCTIONS = Resource("fnmesh.dev", "v1alpha1", "functions", "Function", status=True)
REVISIONS = Resource("fnmesh.dev", "v1alpha1", "revisions", "Revision", status=True)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment", status=True)
SERVICES = Resource("", "v1", "services", "Service", status=True)
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
PLURALS = {
    "Function": "functions",
    "Revision": "revisions",
    "Deployment": "deployments",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "TrafficSplit": "trafficsplits",
    "TrafficTarget": "traffictargets",
    "HTTPRouteGroup": "httproutegroups",
}


def resource_for(api_version: str, kind: str) -> Resource:
    """Where objects of ``kind`` in ``api_version`` live."""
    if kind not in PLURALS:
        raise ValueError(f"kind {kind!r} is not one the operator writes: {', '.join(PLURALS)}")
    return Resource.of(api_version, PLURALS[kind], kind)


def resource_of(obj: Obj) -> Resource:
    """Where ``obj`` lives, from its apiVersion and kind."""
    return resource_for(str(obj.get("apiVersion")), str(obj.get("kind")))


def holds(current: Any, wanted: Any) -> bool:
    """Whether ``current`` has every field of ``wanted`` (lists item by item); fields the
    server or other writers added are allowed."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(
            key in current and holds(current[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(current) == len(wanted)
            and all(holds(c, w) for c, w in zip(current, wanted, strict=True))
        )
    return bool(current == wanted)


class Cluster:
    """Reads and writes through a ``KubeClient``; objects are plain dicts."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def get(self, resource: Resource, namespace: str, name: str) -> Obj | None:
        try:
            return self.client.request("GET", resource.path(namespace, name))
        except NotFound:
            return None

    def list(
        self, resource: Resource, namespace: str, labels: dict[str, str] | None = None
    ) -> list[Obj]:
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in (labels or {}).items())}
        listed = self.client.request("GET", resource.path(namespace), query=query)
        return list(listed.get("items") or [])

    def create(self, obj: Obj) -> Obj | None:
        """Create ``obj``; None when it exists already."""
        meta = obj["metadata"]
        try:
            return self.client.request("POST", resource_of(obj).path(meta["namespace"]), body=obj)
        except Conflict:
            return None

    def apply(self, obj: Obj, *, create_as: Obj | None = None) -> Obj:
        """Make ``obj`` exist: create it (as ``create_as`` when given) or patch it to match."""
        resource, meta = resource_of(obj), obj["metadata"]
        patch = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        current = self.get(resource, meta["namespace"], meta["name"])
        if current is None:
            created = self.create(create_as or obj)
            if created is not None:
                return created
        elif holds(current, patch):
            return current
        return self.patch(resource, meta["namespace"], meta["name"], patch)

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        path = resource.path(namespace, name, subresource)
        return self.client.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    def patch_status(self, resource: Resource, namespace: str, name: str, status: Obj) -> Obj:
        sub = "status" if resource.status else None
        return self.patch(resource, namespace, name, {"status": status}, subresource=sub)

    def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        """Set a Deployment's ``spec.replicas``; a missing Deployment is left missing."""
        with contextlib.suppress(NotFound):
            self.patch(DEPLOYMENTS, namespace, name, {"spec": {"replicas": replicas}})

    def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Delete one object; False when it was not there."""
        try:
            self.client.request("DELETE", resource.path(namespace, name))
        except NotFound:
            return False
        return True
