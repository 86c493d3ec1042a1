"""The kopf operator against an in-memory Kubernetes API: Functions in, workloads out.

kopf runs in a thread of its own with the operator's real registry and settings; the
tests act as users (creating and changing Functions) and as the cluster (reporting ready
replicas on a Deployment's status), and wait on conditions with a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kmock
import kopf
import kubernetes
import pytest
from kmockapi import ApiThread, configuration, token_for
from support.e2e import wait_for

from fnmesh.platform.model import Revision
from fnmesh.platform.runtime.kubernetes import ClusterConfig
from fnmesh.platform.runtime.kubernetes.apply import Cluster
from fnmesh.platform.runtime.kubernetes.operator import Operator, configure, register
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
from fnmesh.platform.runtime.kubernetes.scaler import KubernetesScaler
from fnmesh.platform.store.kubernetes import KubeClient

NS = "team-a"
DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64
MERGE = {"Content-Type": "application/merge-patch+json"}
TIMEOUT = 10.0


def client_for(url: str, component: str = "operator") -> KubeClient:
    return KubeClient(kubernetes.client.ApiClient(configuration(url, component)), timeout=5)


class RunningOperator:
    """The operator's registry and settings, run by kopf in a thread with its own loop."""

    def __init__(self, cluster: ApiThread, config: OperatorConfig | None = None) -> None:
        self.cluster = cluster
        self.client = client_for(cluster.url)
        self.operator = Operator(Cluster(self.client), config or OperatorConfig())
        self.registry = kopf.OperatorRegistry()
        register(self.registry, self.operator)
        kopf.on.login(registry=self.registry)(self._login)
        self.settings = configure(kopf.OperatorSettings())
        self.settings.watching.connect_timeout = 2
        self.settings.networking.request_timeout = 10
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)

    def _login(self, **_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=self.cluster.url, token=token_for("operator"))

    def _run(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry,
                    settings=self.settings,
                    standalone=True,
                    clusterwide=True,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                )
            )
        except BaseException as error:  # reported by __exit__
            self._failure = error

    def __enter__(self) -> RunningOperator:
        watched_before = len(self.cluster.api[kmock.action.WATCH])
        self._thread.start()
        assert self._ready.wait(TIMEOUT), f"the operator did not start: {self._failure!r}"
        # objects made before kopf watches would only be seen as already there
        wait_for(
            "the operator to watch functions, revisions and deployments",
            lambda: len(self.cluster.api[kmock.action.WATCH]) >= watched_before + 3,
            TIMEOUT,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.client.close()
        assert not self._thread.is_alive(), "the operator did not stop"
        assert self._failure is None, f"the operator failed: {self._failure!r}"


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread() as thread:
        yield thread


@pytest.fixture
def operator(cluster: ApiThread) -> Iterator[RunningOperator]:
    with RunningOperator(cluster) as running:
        yield running


# -- acting on the cluster and reading it back ---------------------------------------------

PLURALS = {
    "Function": "fnmesh.dev/v1alpha1/functions",
    "Revision": "fnmesh.dev/v1alpha1/revisions",
    "Deployment": "apps/v1/deployments",
    "Service": "v1/services",
    "ServiceAccount": "v1/serviceaccounts",
    "TrafficSplit": "split.smi-spec.io/v1alpha4/trafficsplits",
    "TrafficTarget": "access.smi-spec.io/v1alpha3/traffictargets",
    "HTTPRouteGroup": "specs.smi-spec.io/v1alpha4/httproutegroups",
}


def function(name: str = "hello", digest: str | None = DIGEST_1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"handler": "main:handle", **spec}
    if digest:
        body["artifact"] = {"digest": digest, "build": "b-1"}
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def path(kind: str, name: str | None = None, subresource: str | None = None) -> str:
    group_version, _, plural = PLURALS[kind].rpartition("/")
    prefix = "/api" if group_version == "v1" else "/apis"
    parts = [f"{prefix}/{group_version}/namespaces/{NS}/{plural}", name, subresource]
    return "/".join(part for part in parts if part)


def get(cluster: ApiThread, kind: str, name: str) -> dict[str, Any] | None:
    found = [o for o in cluster.objects(PLURALS[kind], NS) if o["metadata"]["name"] == name]
    return found[0] if found else None


def names(cluster: ApiThread, kind: str) -> set[str]:
    return cluster.names(PLURALS[kind], NS)


def patch(cluster: ApiThread, kind: str, name: str, body: Any, sub: str | None = None) -> None:
    cluster.request("PATCH", path(kind, name, sub), body, **MERGE)


def until(
    cluster: ApiThread,
    kind: str,
    name: str,
    check: Callable[[dict[str, Any]], Any] = bool,
) -> dict[str, Any]:
    """The object once it exists and ``check`` holds for it; fails at the deadline."""

    def current() -> dict[str, Any] | None:
        found = get(cluster, kind, name)
        return found if found is not None and check(found) else None

    return wait_for(f"{kind} {name} to exist and pass its check", current, TIMEOUT)


def ready(obj: dict[str, Any] | None) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def report_ready(cluster: ApiThread, revision: str, replicas: int = 1) -> None:
    """The cluster's side: the Deployment's pods became ready."""
    status = {"status": {"replicas": replicas, "readyReplicas": replicas}}
    patch(cluster, "Deployment", revision, status, "status")


def serving(cluster: ApiThread, name: str = "hello") -> dict[str, Any]:
    return until(cluster, "Function", name, lambda f: ready(f).get("status") == "True")


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
