"""The kopf operator against an in-memory Kubernetes API: Functions in, workloads out
(``operatorkit`` runs it and acts on the cluster)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
from kmockapi import ApiThread, token_for
from operatorkit import (
    DIGEST_1,
    DIGEST_2,
    NS,
    PLURALS,
    TIMEOUT,
    RunningOperator,
    client_for,
    function,
    get,
    names,
    patch,
    path,
    ready,
    report_ready,
    serving,
    until,
)
from support.e2e import wait_for

from fnmesh.platform.model import Revision
from fnmesh.platform.runtime.kubernetes import ClusterConfig
from fnmesh.platform.runtime.kubernetes.apply import Cluster
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
from fnmesh.platform.runtime.kubernetes.scaler import KubernetesScaler


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread() as thread:
        yield thread


@pytest.fixture
def operator(cluster: ApiThread) -> Iterator[RunningOperator]:
    # a retired revision keeps its replicas a moment, not the default 5 s
    with RunningOperator(cluster, OperatorConfig(retire_grace=0.2)) as running:
        yield running


# -- the tests -------------------------------------------------------------------------------


def test_a_function_gets_its_revision_and_workload(
    cluster: ApiThread, operator: RunningOperator
) -> None:
    cluster.request("POST", path("Function"), function(scale={"initial": 2}))
    revision = until(cluster, "Revision", "hello-00001")
    fn = get(cluster, "Function", "hello")
    assert fn is not None
    assert revision["metadata"]["ownerReferences"][0]["uid"] == fn["metadata"]["uid"]
    assert revision["spec"]["artifact"]["digest"] == DIGEST_1
    deployment = until(cluster, "Deployment", "hello-00001")
    assert deployment["spec"]["replicas"] == 2  # the revision's initial scale
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == revision["metadata"]["uid"]
    until(cluster, "Service", "hello-00001")
    assert names(cluster, "Service") == {"hello", "hello-00001"}
    assert names(cluster, "ServiceAccount") == {"hello"}
    assert names(cluster, "HTTPRouteGroup") == {"hello"}
    target = until(cluster, "TrafficTarget", "hello")
    assert [s["name"] for s in target["spec"]["sources"]] == ["fnmesh-gateway", "fnmesh-activator"]
    assert names(cluster, "TrafficSplit") == set()  # no revision is ready to take traffic
    fn = until(cluster, "Function", "hello", lambda f: f.get("status"))
    assert fn["status"]["observedGeneration"] == 1
    assert fn["status"]["latestCreatedRevision"] == "hello-00001"
    assert fn["status"]["url"] == f"http://hello.{NS}.fn.localhost/"
    assert ready(fn)["reason"] == "RevisionStarting"


def test_ready_replicas_make_everything_ready_and_route_traffic(
    cluster: ApiThread, operator: RunningOperator
) -> None:
    cluster.request("POST", path("Function"), function())
    until(cluster, "Deployment", "hello-00001")
    report_ready(cluster, "hello-00001")
    revision = until(cluster, "Revision", "hello-00001", lambda r: ready(r).get("status") == "True")
    assert revision["status"]["readyReplicas"] == 1
    assert revision["status"]["desiredReplicas"] == 1
    fn = serving(cluster)
    assert fn["status"]["latestReadyRevision"] == "hello-00001"
    assert fn["status"]["traffic"] == [{"revision": "hello-00001", "percent": 100}]
    split = until(cluster, "TrafficSplit", "hello")
    assert split["spec"] == {
        "service": "hello",
        "backends": [{"service": "hello-00001", "weight": 100}],
    }
    # scaled to zero by the autoscaler, the revision can still serve: nothing flaps
    patch(cluster, "Deployment", "hello-00001", {"spec": {"replicas": 0}})
    patch(cluster, "Deployment", "hello-00001", {"status": {"readyReplicas": 0}}, "status")
    revision = until(
        cluster, "Revision", "hello-00001", lambda r: ready(r).get("reason") == "ScaledToZero"
    )
    assert ready(revision)["status"] == "True"
    assert ready(get(cluster, "Function", "hello"))["status"] == "True"


def test_a_stuck_deployment_fails_the_function(
    cluster: ApiThread, operator: RunningOperator
) -> None:
    cluster.request("POST", path("Function"), function())
    until(cluster, "Deployment", "hello-00001")
    stuck = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "hello-00001-abc" has timed out progressing.',
    }
    patch(cluster, "Deployment", "hello-00001", {"status": {"conditions": [stuck]}}, "status")
    fn = until(cluster, "Function", "hello", lambda f: ready(f).get("status") == "False")
    assert ready(fn)["reason"] == "RevisionFailed"
    assert "timed out progressing" in ready(fn)["message"]
    assert ready(get(cluster, "Revision", "hello-00001"))["reason"] == "ProgressDeadlineExceeded"


def test_an_update_stamps_a_new_revision_and_moves_the_traffic(
    cluster: ApiThread, operator: RunningOperator
) -> None:
    cluster.request("POST", path("Function"), function())
    until(cluster, "Deployment", "hello-00001")
    report_ready(cluster, "hello-00001")
    serving(cluster)
    change = {"spec": {"artifact": {"digest": DIGEST_2, "build": "b-2"}, "env": {"A": "1"}}}
    patch(cluster, "Function", "hello", change)
    revision = until(cluster, "Revision", "hello-00002")
    assert revision["spec"]["artifact"]["digest"] == DIGEST_2
    assert revision["spec"]["env"] == {"A": "1"}
    until(cluster, "Deployment", "hello-00002")
    old, new = (
        [{"service": "hello-00001", "weight": 100}],
        [{"service": "hello-00002", "weight": 100}],
    )
    assert get(cluster, "TrafficSplit", "hello")["spec"]["backends"] == old  # until it is ready
    report_ready(cluster, "hello-00002")
    until(cluster, "TrafficSplit", "hello", lambda s: s["spec"]["backends"] == new)
    # the split is written before the function's status: wait for both
    newest = lambda f: f.get("status", {}).get("latestReadyRevision") == "hello-00002"  # noqa: E731
    fn = until(cluster, "Function", "hello", newest)
    assert fn["status"]["observedGeneration"] == 2
    assert fn["status"]["latestReadyRevision"] == "hello-00002"
    until(cluster, "Deployment", "hello-00001", lambda d: d["spec"]["replicas"] == 0)
    assert get(cluster, "Deployment", "hello-00002")["spec"]["replicas"] == 1


def test_scale_decisions_set_replicas_and_a_restart_keeps_them(cluster: ApiThread) -> None:
    with RunningOperator(cluster):
        cluster.request("POST", path("Function"), function())
        until(cluster, "Deployment", "hello-00001")
        scaler = KubernetesScaler(client_for(cluster.url, "autoscaler"))
        revision = Revision.from_dict(get(cluster, "Revision", "hello-00001"))
        asyncio.run(scaler.scale(revision, 3))
        scaler.client.close()
        assert get(cluster, "Deployment", "hello-00001")["spec"]["replicas"] == 3
    # a new operator (say, upgraded to a new runtime image) resumes every revision and
    # applies its Deployment again: the template changes, the autoscaler's replicas stay
    image = "registry.example/fnmesh/runtime:0.2.0"
    upgraded = OperatorConfig(cluster=ClusterConfig(runtime_image=image))

    def runtime_image(deployment: dict[str, Any]) -> str:
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    with RunningOperator(cluster, upgraded):
        until(cluster, "Deployment", "hello-00001", lambda d: runtime_image(d) == image)
    assert get(cluster, "Deployment", "hello-00001")["spec"]["replicas"] == 3


def test_a_deleted_deployment_is_made_again(cluster: ApiThread, operator: RunningOperator) -> None:
    cluster.request("POST", path("Function"), function())
    first = until(cluster, "Deployment", "hello-00001")
    cluster.request("DELETE", path("Deployment", "hello-00001"))
    again = until(
        cluster,
        "Deployment",
        "hello-00001",
        lambda d: d["metadata"]["uid"] != first["metadata"]["uid"],
    )
    assert again["spec"]["replicas"] == 1
    # a revision deleted in the foreground (its dependents first) is not fought over
    finalizer = {"metadata": {"finalizers": ["foregroundDeletion"]}}
    patch(cluster, "Revision", "hello-00001", finalizer)
    cluster.request("DELETE", path("Revision", "hello-00001"))
    cluster.request("DELETE", path("Deployment", "hello-00001"))
    asyncio.run(operator.operator.ensure_revision(NS, "hello-00001"))  # as its events would
    assert get(cluster, "Deployment", "hello-00001") is None
    assert get(cluster, "Revision", "hello-00001")["metadata"]["deletionTimestamp"]


def test_a_scale_decision_for_a_revision_without_a_deployment_is_skipped(
    cluster: ApiThread,
) -> None:
    scaler = KubernetesScaler(client_for(cluster.url, "autoscaler"))
    revision = Revision.from_dict(
        {
            "metadata": {"name": "hello-00009", "namespace": NS},
            "spec": {"function": "hello", "handler": "m:f", "artifact": {"digest": DIGEST_1}},
        }
    )
    asyncio.run(scaler.scale(revision, 2))
    assert names(cluster, "Deployment") == set()
    with pytest.raises(ValueError, match="0 or more"):
        asyncio.run(scaler.scale(revision, -1))
    scaler.client.close()


def test_deleting_a_function_removes_what_it_owned(
    cluster: ApiThread, operator: RunningOperator
) -> None:
    cluster.request("POST", path("Function"), function())
    until(cluster, "Deployment", "hello-00001")
    report_ready(cluster, "hello-00001")
    serving(cluster)
    until(cluster, "TrafficSplit", "hello")
    cluster.request("POST", path("Function"), function("other"))
    until(cluster, "Deployment", "other-00001")
    cluster.request("DELETE", path("Function", "hello"))

    def left() -> dict[str, set[str]]:
        owned = {
            kind: {n for n in names(cluster, kind) if n.startswith("hello")} for kind in PLURALS
        }
        return {kind: found for kind, found in owned.items() if found}

    wait_for("everything of hello to go", lambda: left() == {}, TIMEOUT)
    assert get(cluster, "Deployment", "other-00001") is not None  # others are left alone
    assert names(cluster, "ServiceAccount") == {"other"}


def test_a_private_function_on_a_shared_account(
    cluster: ApiThread, operator: RunningOperator
) -> None:
    cluster.request(
        "POST", path("Function"), function(visibility="private", serviceAccount="shared")
    )
    deployment = until(cluster, "Deployment", "hello-00001")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "shared"
    target = until(cluster, "TrafficTarget", "hello")
    assert target["spec"]["sources"] == []
    assert target["spec"]["destination"]["name"] == "shared"
    assert names(cluster, "ServiceAccount") == set()  # an account it does not own


def test_a_function_without_source_waits_for_one(
    cluster: ApiThread, operator: RunningOperator
) -> None:
    cluster.request("POST", path("Function"), function(digest=None))
    fn = until(cluster, "Function", "hello", ready)
    assert ready(fn)["reason"] == "NoSource"
    assert names(cluster, "Revision") == set()


def test_apply_writes_only_what_differs(cluster: ApiThread) -> None:
    client = client_for(cluster.url)
    applied = Cluster(client)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": NS, "labels": {"a": "1"}},
        "spec": {"selector": {"app": "hello"}, "ports": [{"name": "http", "port": 80}]},
    }

    def writes() -> int:
        return sum(len(cluster.api[method]) for method in ("post", "patch", "put", "delete"))

    try:
        applied.apply(service)
        assert writes() == 1
        patch(cluster, "Service", "hello", {"spec": {"clusterIP": "10.0.0.7"}})  # the server's
        applied.apply(service)
        assert writes() == 2  # the test's patch only: the Service holds every built field
        relabelled = {**service, "metadata": {**service["metadata"], "labels": {"a": "2"}}}
        applied.apply(relabelled)
        assert writes() == 3
        current = get(cluster, "Service", "hello")
        assert current["metadata"]["labels"] == {"a": "2"}
        assert current["spec"]["clusterIP"] == "10.0.0.7"
    finally:
        client.close()


# -- the entry point the chart runs ----------------------------------------------------------


def test_the_entry_point_runs_the_operator_until_terminated(tmp_path: Path) -> None:
    with ApiThread(namespaces=(NS, "elsewhere")) as cluster:
        run_the_entry_point(cluster, tmp_path)


def run_the_entry_point(cluster: ApiThread, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig(tmp_path / "kubeconfig", "operator")),
        "FNMESH_GATEWAY_DOMAIN": "fn.example.com",
        "FNMESH_WATCH_NAMESPACES": NS,
    }
    log = (tmp_path / "operator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fnmesh.platform.runtime.kubernetes.operator"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        watched = lambda: len(cluster.api[kmock.action.WATCH]) >= 3  # noqa: E731
        wait_for("the operator to watch", watched, 30)
        cluster.request("POST", path("Function"), function())
        until(cluster, "Deployment", "hello-00001")
        fn = until(cluster, "Function", "hello", lambda f: f.get("status"))
        assert fn["status"]["url"] == f"http://hello.{NS}.fn.example.com/"
        sent = list(cluster.api[kmock.action.WATCH])
        paths = [r.url.path for r in sent if r.url.path != "/api/v1/namespaces"]
        assert paths and all(f"/namespaces/{NS}/" in path for path in paths), paths
        assert any(
            r.headers.get("Authorization") == f"Bearer {token_for('operator')}" for r in sent
        )
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        log.close()
    output = (tmp_path / "operator.log").read_text()
    assert code == 0, output


def test_the_entry_point_refuses_a_bad_environment(tmp_path: Path) -> None:
    env = {**os.environ, "FNMESH_RUN_AS_USER": "0", "KUBECONFIG": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, "-m", "fnmesh.platform.runtime.kubernetes.operator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "FNMESH_RUN_AS_USER: must be a user id above 0" in done.stderr
