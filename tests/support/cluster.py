"""The Kubernetes backend as processes on this machine: the chart without a cluster.

``KubernetesPlatform`` starts, against the in-memory API (``kmockapi``):

- the chart's components as real processes, configured as the chart configures them
  (``FNMESH_*``), each at a local port: the API (with the identity endpoint and the
  artifact service), the gateway, the activator, the autoscaler and the operator;
- the process kubelet (``kubelet.py``), which runs the operator's Deployments as local
  processes and resolves Services for the components (``FNMESH_SERVICE_HOSTS``).

The components' own projected tokens (``<component>-token``) and the pods' tokens are
in one table the cluster's TokenReview answers from (``tokenreviews.py``). The platform's
addresses go in ``<home>/context.json`` as ``fn up`` writes them, so the ``fn`` CLI works
unchanged against it.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import attrs
import kmock
import yaml
from kmockapi import ApiThread, KubeApi, token_for
from support.e2e import http, wait_for
from support.kubelet import ProcessKubelet
from support.tokenreviews import REVIEWS, ServiceAccountTokens

from fnmesh.platform.mesh.identity import CertificateAuthority
from fnmesh.platform.mesh.identity.csr import key_to_pem

PLATFORM_NAMESPACE = "fnmesh-system"
ADMIN_TOKEN = "the-admin-token-of-the-test-cluster"
AUDIENCE = "identity.fnmesh.dev"
OPERATOR_TOKEN = "operator-kubeconfig-token"
# the chart's components: (module, its listening ports)
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "api": ("fnmesh.platform.cluster.api", ("api", "identity", "artifact")),
    "autoscaler": ("fnmesh.platform.cluster.autoscaler", ("autoscaler",)),
    "activator": ("fnmesh.platform.cluster.activator", ("activator",)),
    "gateway": ("fnmesh.platform.cluster.gateway", ("gateway",)),
    "telemetry": ("fnmesh.platform.cluster.telemetry", ("telemetry",)),
    "operator": ("fnmesh.platform.runtime.kubernetes.operator", ()),
}
# resources the in-memory API serves besides kmockapi's: what the kubelet writes
EXTRA_RESOURCES = {
    "v1/endpoints": "Endpoints",
    "discovery.k8s.io/v1/endpointslices": "EndpointSlice",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kubeconfig(path: Path, server: str, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class RecentRequests(list):  # type: ignore[type-arg]
    """kmock's request history, keeping only the newest ``keep`` requests.

    kmock checks every request against each reaction by walking the whole history, so a
    session of thousands of requests slows every later one (quadratically: 60 ms a
    request after a few hundred). A session needs no history, so it keeps a few; the
    length stays the count of all requests, which kmock numbers requests by.
    """

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep
        self.count = 0

    def append(self, item: object) -> None:
        self.count += 1
        super().append(item)
        if super().__len__() > self.keep:
            del self[: super().__len__() - self.keep]

    def __len__(self) -> int:
        return self.count


@attrs.define(kw_only=True)
class SessionApi(KubeApi):
    """The in-memory API for a whole session: a short request history, and the watches
    each client (by its bearer token) has opened, for telling when one follows a kind."""

    watched: set[tuple[str, str]] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._requests = RecentRequests(keep=32)

    async def _serve_watch(self, request: kmock.Request) -> Any:
        token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        self.watched.add((token, request.url.path.rsplit("/", 1)[-1]))
        async for event in super()._serve_watch(request):
            yield event


def in_memory_api(tokens: ServiceAccountTokens) -> SessionApi:
    api = SessionApi()
    for plural, kind in EXTRA_RESOURCES.items():
        api.resources[plural] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=True,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            subresources=set(),
        )
    api["post " + REVIEWS] << tokens.answer
    return api


class KubernetesPlatform:
    """The chart's components, a process kubelet and an in-memory API (see the module)."""

    def __init__(self, root: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.home = root / "home"
        self.extra_env = dict(env or {})
        self.tokens = ServiceAccountTokens()
        self.cluster = ApiThread(
            in_memory_api(self.tokens), namespaces=("default", "fnmesh-system")
        )
        self.ports = {
            name: free_port()
            for name in (
                "api",
                "identity",
                "artifact",
                "gateway",
                "activator",
                "autoscaler",
                "telemetry",
            )
        }
        self.kubelet: ProcessKubelet | None = None
        self.running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.cluster.__enter__()
        self.kubelet = ProcessKubelet(self.cluster.url, self.root / "kubelet", self.tokens)
        self.kubelet.start()
        env = self._env()
        for component in COMPONENTS:
            self._start(component, env)
        for component, (_, ports) in COMPONENTS.items():
            for port in ports:
                self._wait_listening(component, self.ports[port])
        wait_for("the operator to watch", self._operator_watches, timeout=30)
        wait_for("the API to answer", lambda: http("GET", self.api + "/healthz").status == 200, 30)
        context = {
            "api": self.api,
            "gateway": self.gateway,
            "token": ADMIN_TOKEN,
            "domain": "fn.localhost",
            "backend": "kubernetes",
        }
        (self.home / "context.json").write_text(json.dumps(context))

    def stop(self) -> dict[str, int | None]:
        for process, _ in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for component, (process, log) in self.running.items():
            try:
                codes[component] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes[component] = None
            log.close()
        if self.kubelet is not None:
            self.kubelet.stop()
        self.cluster.__exit__(None, None, None)
        return codes

    def logs(self) -> str:
        parts = []
        for component in self.running:
            text = (self.root / f"{component}.log").read_text(errors="replace")
            parts.append(f"--- {component}\n{text[-6000:]}")
        if self.kubelet is not None:
            parts.append(self.kubelet.pod_logs())
        return "\n".join(parts)

    # -- starting -------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        authority = CertificateAuthority.create(datetime.datetime.now(datetime.UTC))
        ca = self.root / "ca"
        ca.mkdir(exist_ok=True)
        (ca / "ca.crt").write_text(authority.anchor.pem)
        (ca / "issuer.crt").write_text(authority.issuer.pem)
        (ca / "issuer.key").write_text(key_to_pem(authority.issuer.key))
        local = "127.0.0.1"
        assert self.kubelet is not None
        return {
            **os.environ,
            "FNMESH_LOG_LEVEL": "INFO",
            "FNMESH_LISTEN_HOST": local,
            "FNMESH_TRUST_ANCHORS": authority.trust_anchors_pem,
            "FNMESH_API_URL": f"http://{local}:{self.ports['api']}",
            "FNMESH_IDENTITY_URL": f"https://{local}:{self.ports['identity']}",
            "FNMESH_ARTIFACT_URL": f"https://{local}:{self.ports['artifact']}",
            "FNMESH_ACTIVATOR_URL": f"https://{local}:{self.ports['activator']}",
            "FNMESH_AUTOSCALER_URL": f"https://{local}:{self.ports['autoscaler']}",
            "FNMESH_TELEMETRY_URL": f"https://{local}:{self.ports['telemetry']}",
            "FNMESH_SERVICE_HOSTS": str(self.kubelet.hosts_file),
            "FNMESH_CA_DIR": str(ca),
            "FNMESH_DATA_DIR": str(self.root / "data"),
            "FNMESH_API_TOKEN": ADMIN_TOKEN,
            **self.extra_env,
        }

    def _start(self, component: str, common: dict[str, str]) -> None:
        module, ports = COMPONENTS[component]
        token = f"{component}-token"
        env = {**common}
        if ports:
            env["FNMESH_LISTEN_PORT"] = str(self.ports[ports[0]])
        # each component talks to the cluster as its own service account, held to the
        # chart's RBAC by the test cluster
        env["KUBECONFIG"] = str(
            self.cluster.kubeconfig(self.root / f"{component}.kubeconfig", component)
        )
        if component == "api":
            env["FNMESH_IDENTITY_PORT"] = str(self.ports["identity"])
            env["FNMESH_ARTIFACT_PORT"] = str(self.ports["artifact"])
        elif component != "operator":
            path = self.root / f"{component}.token"
            path.write_text(token + "\n")
            env["FNMESH_IDENTITY_TOKEN_FILE"] = str(path)
            self.tokens.add(token, PLATFORM_NAMESPACE, f"fnmesh-{component}", (AUDIENCE,))
        log = (self.root / f"{component}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self.running[component] = (process, log)

    def _wait_listening(self, component: str, port: int) -> None:
        process, _ = self.running[component]

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{component} exited {process.returncode}:\n{self.logs()}")
            return listening(port)

        wait_for(f"the {component} to listen on {port}", ready, timeout=30)

    def _operator_watches(self) -> bool:
        process, _ = self.running["operator"]
        if process.poll() is not None:
            raise AssertionError(f"the operator exited {process.returncode}:\n{self.logs()}")
        api = self.cluster.api
        assert isinstance(api, SessionApi)
        paths = {path for token, path in set(api.watched) if token == token_for("operator")}
        return {"functions", "revisions", "deployments"} <= paths
