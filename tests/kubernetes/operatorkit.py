"""Running the kopf operator against the in-memory Kubernetes API, and acting on it.

kopf runs in a thread of its own with the operator's real registry and settings; tests
act as users (creating and changing Functions) and as the cluster (reporting ready
replicas on a Deployment's status), and wait on conditions with a deadline.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable
from typing import Any

import kmock
import kopf
import kubernetes
from kmockapi import ApiThread, configuration, token_for
from support.e2e import wait_for

from fnmesh.platform.controller import Metrics
from fnmesh.platform.runtime.kubernetes.apply import Cluster
from fnmesh.platform.runtime.kubernetes.operator import Operator, configure, register
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
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

    def __init__(
        self,
        cluster: ApiThread,
        config: OperatorConfig | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.cluster = cluster
        self.client = client_for(cluster.url)
        cfg = config or OperatorConfig()
        self.operator = Operator(Cluster(self.client), cfg, metrics=metrics)
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
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """The object once it exists and ``check`` holds for it; fails at the deadline."""

    def current() -> dict[str, Any] | None:
        found = get(cluster, kind, name)
        return found if found is not None and check(found) else None

    return wait_for(f"{kind} {name} to exist and pass its check", current, timeout)


def ready(obj: dict[str, Any] | None) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def report_ready(cluster: ApiThread, revision: str, replicas: int = 1) -> None:
    """The cluster's side: the Deployment's pods became ready."""
    status = {"status": {"replicas": replicas, "readyReplicas": replicas}}
    patch(cluster, "Deployment", revision, status, "status")


def serving(cluster: ApiThread, name: str = "hello") -> dict[str, Any]:
    return until(cluster, "Function", name, lambda f: ready(f).get("status") == "True")


def history(cluster: ApiThread, kind: str, name: str) -> list[dict[str, Any]]:
    """Every version the server kept of an object, oldest first ([] if never made)."""
    wanted = kmock.resource(PLURALS[kind])

    async def read() -> list[dict[str, Any]]:
        async with cluster.api._lock:
            for (resource, namespace, found), obj in cluster.api.objects.items():
                if resource == wanted and namespace == NS and found == name:
                    return [copy.deepcopy(dict(version)) for version in obj.history]
        return []

    result: list[dict[str, Any]] = cluster.call(read())
    return result
