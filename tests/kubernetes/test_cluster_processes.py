"""The chart's entry points as real processes against an in-memory Kubernetes API.

The API serves the identity endpoint; the gateway, the activator, the autoscaler and the
telemetry hub get their certificates from it with their (reviewed) projected tokens,
then a request for a function scaled to zero goes gateway -> activator (mTLS) ->
autoscaler (mTLS), and the autoscaler scales the revision's Deployment in the cluster.
Once the cluster reports a ready replica the request is let through to the revision's
Service. SIGTERM stops every process cleanly.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import kmock
import pytest
from kmockapi import ApiThread, KubeApi
from support.e2e import wait_for

from fnmesh.platform.mesh.identity import CertificateAuthority
from fnmesh.platform.mesh.identity.csr import key_to_pem

pytestmark = pytest.mark.e2e

REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
AUDIENCE = "identity.fnmesh.dev"
GROUP = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
MERGE = {"Content-Type": "application/merge-patch+json"}
COMPONENTS = ("autoscaler", "activator", "gateway", "telemetry")


def answer(request: kmock.Request) -> dict[str, Any]:
    """Tokens are '<component>-token' for the chart's accounts of the components."""
    token = request.data["spec"]["token"]
    component = token.removesuffix("-token")
    status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
    if component in COMPONENTS:
        user = f"system:serviceaccount:fnmesh-system:fnmesh-{component}"
        status = {"authenticated": True, "user": {"username": user}, "audiences": [AUDIENCE]}
    return {**request.data, "status": status}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Processes:
    def __init__(self, tmp_path: Path, cluster: ApiThread) -> None:
        self.tmp = tmp_path
        self.cluster = cluster
        self.ports = {name: free_port() for name in ("api", "identity", *COMPONENTS)}
        self.authority = authority = CertificateAuthority.create(
            datetime.datetime.now(datetime.UTC)
        )
        ca = tmp_path / "ca"
        ca.mkdir()
        (ca / "ca.crt").write_text(authority.anchor.pem)
        (ca / "issuer.crt").write_text(authority.issuer.pem)
        (ca / "issuer.key").write_text(key_to_pem(authority.issuer.key))
        self.env = {
            **os.environ,
            "FNMESH_LISTEN_HOST": "127.0.0.1",
            "FNMESH_TRUST_ANCHORS": authority.trust_anchors_pem,
            "FNMESH_IDENTITY_URL": f"https://127.0.0.1:{self.ports['identity']}",
            "FNMESH_ACTIVATOR_URL": f"https://127.0.0.1:{self.ports['activator']}",
            "FNMESH_AUTOSCALER_URL": f"https://127.0.0.1:{self.ports['autoscaler']}",
            "FNMESH_TELEMETRY_URL": f"https://127.0.0.1:{self.ports['telemetry']}",
            "FNMESH_CA_DIR": str(ca),
            "FNMESH_DATA_DIR": str(tmp_path / "data"),
            "FNMESH_API_TOKEN": "the-admin-token-of-the-chart",
        }
        self.running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def start(self, component: str) -> None:
        env = {**self.env, "FNMESH_LISTEN_PORT": str(self.ports[component])}
        # each component with its own ServiceAccount, as the chart runs it
        env["KUBECONFIG"] = str(
            self.cluster.kubeconfig(self.tmp / f"{component}.kubeconfig", component)
        )
        if component == "api":
            env["FNMESH_IDENTITY_PORT"] = str(self.ports["identity"])
        else:
            token = self.tmp / f"{component}.token"
            token.write_text(f"{component}-token\n")
            env["FNMESH_IDENTITY_TOKEN_FILE"] = str(token)
        log = (self.tmp / f"{component}.log").open("wb")
        module = f"fnmesh.platform.cluster.{component}"
        process = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log, stderr=log)
        self.running[component] = (process, log)

    def wait_listening(self, component: str, port_of: str | None = None) -> None:
        process, _ = self.running[component]
        port = self.ports[port_of or component]

        def ready() -> bool:
            assert process.poll() is None, self.log(component)
            return listening(port)

        wait_for(f"the {component} to listen", ready, timeout=60)

    def log(self, component: str) -> str:
        return (self.tmp / f"{component}.log").read_text(errors="replace")

    def stop(self) -> dict[str, int | None]:
        for process, _ in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        for component, (process, log) in self.running.items():
            try:
                codes[component] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[component] = None
            log.close()
        return codes


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    api = KubeApi()
    api["post " + REVIEWS] << answer
    with ApiThread(api, namespaces=("default", "fnmesh-system")) as thread:
        yield thread


def scaled_to_zero(cluster: ApiThread) -> None:
    """A function whose only revision is ready but scaled to zero, as the operator leaves it."""
    digest = "sha256:" + "1" * 64
    function = {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {"handler": "main:handle", "artifact": {"digest": digest}, "timeout": 5},
    }
    cluster.request("POST", f"{GROUP}/functions", function)
    revision = {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {
            "name": "hello-00001",
            "labels": {"fnmesh.dev/function": "hello"},
            "annotations": {"fnmesh.dev/generation": "1"},
        },
        "spec": {
            "function": "hello",
            "handler": "main:handle",
            "artifact": {"digest": digest},
            "scale": {"initial": 0},
        },
    }
    cluster.request("POST", f"{GROUP}/revisions", revision)
    ready = {"type": "Ready", "status": "True", "reason": "ScaledToZero", "message": "zero"}
    status = {"status": {"readyReplicas": 0, "desiredReplicas": 0, "conditions": [ready]}}
    cluster.request("PATCH", f"{GROUP}/revisions/hello-00001/status", status, **MERGE)
    traffic = [{"revision": "hello-00001", "percent": 100}]
    status = {"status": {"observedGeneration": 1, "traffic": traffic}}
    cluster.request("PATCH", f"{GROUP}/functions/hello/status", status, **MERGE)
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "hello"},
        "spec": {"service": "hello", "backends": [{"service": "hello-00001", "weight": 100}]},
    }
    cluster.request(
        "POST", "/apis/split.smi-spec.io/v1alpha4/namespaces/default/trafficsplits", split
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hello-00001", "labels": {"fnmesh.dev/revision": "hello-00001"}},
        "spec": {"replicas": 0},
    }
    cluster.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment)


def get(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def replicas(cluster: ApiThread) -> int:
    found = cluster.request("GET", "/apis/apps/v1/namespaces/default/deployments/hello-00001")
    return int(found["spec"].get("replicas") or 0)


def test_a_request_at_zero_scales_the_revision_across_the_components(
    cluster: ApiThread, tmp_path: Path
) -> None:
    scaled_to_zero(cluster)
    processes = Processes(tmp_path, cluster)
    try:
        processes.start("api")
        processes.wait_listening("api", "identity")
        for component in COMPONENTS:
            processes.start(component)
        for component in COMPONENTS:
            processes.wait_listening(component)
        gateway = f"http://127.0.0.1:{processes.ports['gateway']}"
        assert get(f"{gateway}/fn/nobody/", 10)[0] == 404
        assert replicas(cluster) == 0

        result: list[tuple[int, dict[str, Any]]] = []

        def invoke() -> None:
            result.append(get(f"{gateway}/fn/hello/", 60))

        caller = threading.Thread(target=invoke)
        caller.start()
        wait_for("the autoscaler to scale up", lambda: replicas(cluster) >= 1, timeout=30)
        assert not result  # held by the activator while nothing is ready
        status = {"status": {"readyReplicas": 1}}
        cluster.request("PATCH", f"{GROUP}/revisions/hello-00001/status", status, **MERGE)
        caller.join(60)
        ((code, body),) = result
        # let through to hello-00001.default.svc, which only a cluster's DNS knows
        assert code in (502, 503), body
        assert "activat" not in json.dumps(body), body
    finally:
        codes = processes.stop()
    logs = {c: processes.log(c) for c in codes}
    assert codes == dict.fromkeys(codes, 0), logs
    for component in COMPONENTS:
        assert "certified as" in logs[component], logs[component]
