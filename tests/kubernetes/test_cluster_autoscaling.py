"""What the autoscaler sizes on a cluster: the active revisions of each function, followed
in an in-memory Kubernetes API, with the ready replicas the operator reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest
from kmockapi import ApiThread, configuration

from fnmesh.platform.cluster.follow import RevisionFollower, ready_replicas
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.model import Revision
from fnmesh.platform.store.kubernetes import KubeClient

GROUP = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
MERGE = {"Content-Type": "application/merge-patch+json"}


def client_for(url: str) -> KubeClient:
    return KubeClient(kubernetes.client.ApiClient(configuration(url, "autoscaler")))


async def until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if found := check():
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Sizer:
    def __init__(self) -> None:
        self.tracked: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    async def track(self, revision: Revision) -> None:
        self.tracked.add(revision.name)
        self.calls.append(("track", revision.name))

    async def untrack(self, namespace: str, name: str) -> None:
        self.tracked.discard(name)
        self.calls.append(("untrack", name))


def function(number: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {"handler": "main:handle", "artifact": {"digest": "sha256:" + str(number) * 64}},
    }


def revision(number: int) -> dict[str, Any]:
    """The revision the operator stamps for the function's generation ``number``."""
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {
            "name": f"hello-{number:05d}",
            "labels": {"fnmesh.dev/function": "hello"},
            "annotations": {"fnmesh.dev/generation": str(number)},
        },
        "spec": {
            "function": "hello",
            "handler": "main:handle",
            "artifact": {"digest": "sha256:" + str(number) * 64},
        },
    }


def stamp(cluster: ApiThread, number: int) -> None:
    """What the operator does for a new generation: the revision, then the status."""
    cluster.request("POST", f"{GROUP}/revisions", revision(number))
    status = {"status": {"observedGeneration": number}}
    cluster.request("PATCH", f"{GROUP}/functions/hello/status", status, **MERGE)


def route(cluster: ApiThread, number: int) -> None:
    """What the operator writes once revision ``number`` takes the traffic."""
    traffic = [{"revision": f"hello-{number:05d}", "percent": 100}]
    status = {"status": {"traffic": traffic, "latestReadyRevision": f"hello-{number:05d}"}}
    cluster.request("PATCH", f"{GROUP}/functions/hello/status", status, **MERGE)


def ready(cluster: ApiThread, name: str, replicas: int) -> None:
    condition = {"type": "Ready", "status": "True", "reason": "ReplicasReady", "message": "ok"}
    status = {"status": {"readyReplicas": replicas, "conditions": [condition]}}
    cluster.request("PATCH", f"{GROUP}/revisions/{name}/status", status, **MERGE)


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread(namespaces=("default",)) as thread:
        yield thread


async def test_the_autoscaler_sizes_each_functions_active_revisions(cluster: ApiThread) -> None:
    cluster.request("POST", f"{GROUP}/functions", function(1))
    stamp(cluster, 1)
    ready(cluster, "hello-00001", 2)
    route(cluster, 1)
    store = ClusterStore(client_for(cluster.url), retry_delay=0.05)
    follower = RevisionFollower(store)
    sizer = Sizer()
    follower.start(sizer)
    try:
        await asyncio.wait_for(follower.synced.wait(), 10)
        assert sizer.tracked == {"hello-00001"}
        assert follower.ready("default", "hello-00001") == 2

        current = cluster.request("GET", f"{GROUP}/functions/hello")
        cluster.request(
            "PUT", f"{GROUP}/functions/hello", {**function(2), "metadata": current["metadata"]}
        )
        calls = len(sizer.calls)
        stamp(cluster, 2)  # a new revision, starting
        await until("the new revision", lambda: "hello-00002" in sizer.tracked)
        assert ("untrack", "hello-00001") not in sizer.calls[calls:]  # not while it was stamped
        assert sizer.tracked == {"hello-00001", "hello-00002"}  # the old one carries traffic
        assert follower.ready("default", "hello-00002") == 0

        ready(cluster, "hello-00002", 1)  # it is ready: traffic moves, the old one retires
        route(cluster, 2)
        await until("the old one to retire", lambda: sizer.tracked == {"hello-00002"})
        assert follower.ready("default", "hello-00002") == 1

        cluster.request("DELETE", f"{GROUP}/functions/hello")
        await until("the function to go", lambda: not sizer.tracked)
        assert ("untrack", "hello-00002") in sizer.calls
    finally:
        await follower.close()
        store.close()


@pytest.mark.parametrize(
    ("status", "count"),
    [({}, 0), ({"readyReplicas": 3}, 3), ({"readyReplicas": -1}, 0), ({"readyReplicas": "2"}, 0)],
)
def test_ready_replicas_come_from_the_operators_status(status: dict[str, Any], count: int) -> None:
    assert ready_replicas({"status": status}) == count
