"""Routes on a cluster: the store as components see it, and a revision's Service as its
endpoint -- the gateway's real route table following an in-memory Kubernetes API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest
from kmockapi import ApiThread, configuration

from fnmesh.platform.cluster.endpoints import RouteSource, with_service_endpoints
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.store import Event
from fnmesh.platform.store.kubernetes import KubeClient

GROUP = "/apis/fnmesh.dev/v1alpha1/namespaces"


def client_for(url: str) -> KubeClient:
    return KubeClient(kubernetes.client.ApiClient(configuration(url, "gateway")))


async def until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if found := check():
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def function(name: str = "hello") -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {"handler": "main:handle", "timeout": 12.0},
    }


def revision(name: str = "hello-00001", account: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "function": "hello",
        "handler": "main:handle",
        "artifact": {"digest": "sha256:" + "1" * 64},
        "concurrency": 4,
    }
    if account:
        spec["serviceAccount"] = account
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {"name": name, "labels": {"fnmesh.dev/function": "hello"}},
        "spec": spec,
    }


def split(*backends: tuple[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "hello"},
        "spec": {
            "service": "hello",
            "backends": [{"service": s, "weight": w} for s, w in backends],
        },
    }


@pytest.mark.parametrize(
    ("status", "replicas"),
    [
        ({}, 0),
        ({"readyReplicas": 0}, 0),
        ({"readyReplicas": 3, "desiredReplicas": 3}, 3),
        ({"readyReplicas": "3"}, 0),
        ({"readyReplicas": True}, 0),
        ({"readyReplicas": 1, "replicas": [{"name": "stale", "address": "10.0.0.9:1"}]}, 1),
    ],
)
def test_a_revision_has_one_service_endpoint_per_ready_replica(
    status: dict[str, Any], replicas: int
) -> None:
    body = {**revision(), "status": status}
    body["metadata"]["namespace"] = "team-a"
    seen = with_service_endpoints(body)
    assert seen["status"]["replicas"] == [
        {"name": f"hello-00001-{i}", "address": "hello-00001.team-a.svc:80", "ready": True}
        for i in range(replicas)
    ]
    assert body["status"] == status  # the input is left alone


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread(namespaces=("default", "team-a", "team-b", "team-c")) as thread:
        yield thread


async def test_the_gateways_route_table_follows_the_cluster(cluster: ApiThread) -> None:
    store = ClusterStore(client_for(cluster.url), retry_delay=0.05)
    table = RouteTable(RouteSource(store))
    cluster.request("POST", f"{GROUP}/default/functions", function())
    cluster.request("POST", f"{GROUP}/default/revisions", revision(account="billing"))
    table.start()
    try:
        await asyncio.wait_for(table.synced.wait(), 10)
        routes = table.get("default", "hello")
        assert routes is not None and routes.timeout == 12.0 and routes.backends == ()
        splits = "/apis/split.smi-spec.io/v1alpha4/namespaces/default/trafficsplits"
        cluster.request("POST", splits, split(("hello-00001", 100)))
        await until("the split", lambda: (r := table.get("default", "hello")) and r.backends)
        assert table.ready_replicas("default", "hello", "hello-00001") == 0

        status = {"status": {"readyReplicas": 2, "desiredReplicas": 2}}
        path = f"{GROUP}/default/revisions/hello-00001/status"
        merge = {"Content-Type": "application/merge-patch+json"}
        cluster.request("PATCH", path, status, **merge)
        await until(
            "ready replicas", lambda: table.ready_replicas("default", "hello", "hello-00001")
        )
        routes = table.get("default", "hello")
        assert routes is not None
        endpoints = routes.endpoints["hello-00001"]
        assert [(e.host, e.port) for e in endpoints] == [("hello-00001.default.svc", 80)] * 2
        assert {e.identity for e in endpoints} == {
            "billing.default.serviceaccount.identity.fnmesh.local"
        }
        assert routes.concurrency == {"hello-00001": 4}

        cluster.request("PATCH", path, {"status": {"readyReplicas": 0}}, **merge)
        await until(
            "scaled to zero", lambda: not table.ready_replicas("default", "hello", "hello-00001")
        )
        cluster.request("DELETE", f"{GROUP}/default/functions/hello")
        await until("the function to go", lambda: table.get("default", "hello") is None)
    finally:
        await table.close()
        store.close()


def test_lists_report_the_oldest_version_since_the_last_watch() -> None:
    class Versions:
        def __init__(self) -> None:
            self.next = 5

        def list(self, kind: str, namespace: Any = None, labels: Any = None) -> Any:
            self.next += 1
            return [], self.next

    source = RouteSource(Versions())  # type: ignore[arg-type]
    assert [source.list(kind)[1] for kind in ("Function", "TrafficSplit", "Revision")] == [6] * 3


async def test_listed_namespaces_are_read_one_by_one(cluster: ApiThread) -> None:
    for namespace in ("team-a", "team-b", "team-c"):
        cluster.request("POST", f"{GROUP}/{namespace}/functions", function(f"fn-{namespace}"))
    store = ClusterStore(client_for(cluster.url), namespaces=("team-a", "team-b"))
    try:
        items, version = store.list("Function")
        assert [i["metadata"]["name"] for i in items] == ["fn-team-a", "fn-team-b"]
        seen: list[Event] = []

        async def follow() -> None:
            async for event in store.watch(frozenset({"Function"}), version):
                seen.append(event)

        task = asyncio.create_task(follow())
        for namespace in ("team-c", "team-b", "team-a"):
            cluster.request("POST", f"{GROUP}/{namespace}/functions", function("late"))
        await until("both events", lambda: len(seen) >= 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(e.namespace for e in seen) == ["team-a", "team-b"]
        sent = [r.url.path for r in cluster.api["list"]] + [
            r.url.path for r in cluster.api["watch"]
        ]
        assert sent and all("/namespaces/team-" in p for p in sent), sent
    finally:
        store.close()
