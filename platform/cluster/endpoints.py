"""Where a revision's replicas are reached on a cluster: its Service, by DNS name.

The gateway's route table (``gateway.table``) routes to the ready replicas a Revision's
status lists, each with an ``address``; on one machine the runtime writes them. On a
cluster the operator writes only counts (``readyReplicas``), and the replicas are pods
behind the revision's Service (``<revision>.<namespace>.svc``, port 80 -> the proxies'
mTLS port). So ``with_service_endpoints`` gives a revision one endpoint per ready replica,
every one at that Service: the route table counts capacity right (the activator sizes
its admission by it), and kube-proxy spreads the connections over the pods. The
balancer's latency-aware choice then picks among connections rather than pods -- the
price of not following EndpointSlices -- while mTLS still checks every pod against the
revision's identity, since all of them run as its service account.

``RouteSource`` is the store as the route table should see it on a cluster: revisions
with those endpoints, and lists that report the smallest resource version read since the
last watch started, so a change made between the table's list of one kind and of the
next is replayed by its watch instead of lost. Given ``ServiceHosts``, a Service name the
hosts file lists becomes its address (a machine without the cluster's DNS).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

from fnmesh.platform.cluster.service_hosts import ServiceHosts
from fnmesh.platform.runtime.kubernetes.builders import SERVICE_PORT
from fnmesh.platform.store import Store
from fnmesh.platform.store.events import Event

Obj = dict[str, Any]


def service_address(revision: str, namespace: str, hosts: ServiceHosts | None = None) -> str:
    """``host:port`` of a revision's Service inside the cluster (its name's address in
    ``hosts`` when that lists it)."""
    name = f"{revision}.{namespace}.svc"
    return f"{hosts.address(name) if hosts is not None else name}:{SERVICE_PORT}"


def with_service_endpoints(revision: Obj, hosts: ServiceHosts | None = None) -> Obj:
    """``revision`` whose status lists a ready replica per ``readyReplicas``, each at the
    revision's Service (a copy; the input is left alone)."""
    body = copy.deepcopy(revision)
    meta = body.get("metadata") or {}
    status = body.setdefault("status", {}) or {}
    body["status"] = status
    ready = status.get("readyReplicas")
    count = ready if isinstance(ready, int) and not isinstance(ready, bool) and ready > 0 else 0
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "default")
    address = service_address(name, namespace, hosts) if count else ""
    status["replicas"] = [
        {"name": f"{name}-{index}", "address": address, "ready": True} for index in range(count)
    ]
    return body


class RouteSource:
    """A Store whose revisions carry Service endpoints (see the module's docstring)."""

    def __init__(self, store: Store, hosts: ServiceHosts | None = None) -> None:
        self.store = store
        self.hosts = hosts
        self._oldest: int | None = None

    def _seen(self, version: int) -> int:
        self._oldest = version if self._oldest is None else min(self._oldest, version)
        return self._oldest

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        found = self.store.get(kind, namespace, name)
        return with_service_endpoints(found, self.hosts) if kind == "Revision" else found

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], int]:
        items, version = self.store.list(kind, namespace, labels)
        if kind == "Revision":
            items = [with_service_endpoints(item, self.hosts) for item in items]
        return items, self._seen(version)

    def create(self, obj: Obj) -> Obj:
        return self.store.create(obj)

    def update(self, obj: Obj) -> Obj:
        return self.store.update(obj)

    def update_status(self, obj: Obj) -> Obj:
        return self.store.update_status(obj)

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        return self.store.delete(kind, namespace, name)

    async def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        self._oldest = None
        async for event in self.store.watch(kinds, since):
            if event.kind == "Revision":
                body = with_service_endpoints(event.object, self.hosts)
                event = Event(event.type, event.kind, body, event.resource_version)
            yield event
