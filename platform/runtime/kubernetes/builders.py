"""Desired Kubernetes objects for a function and its revisions: pure ``make_*`` functions.

Each takes frozen inputs (a Function or Revision from the model, a ClusterConfig) and
returns the object as a plain dict, ready to be created or compared with what the cluster
holds. The operator decides *when* to apply them; nothing here reads the cluster.

Ownership: objects of a whole function (its ServiceAccount, apex Service, TrafficSplit,
TrafficTarget, HTTPRouteGroup) are controlled by the Function; a revision's Deployment and
Service are controlled by that Revision (itself owned by the Function), so deleting a
Function removes everything it caused and deleting a Revision removes only its replicas.

A replica pod runs three containers:

- ``fetch`` (init): downloads the revision's artifact from the platform's artifact service
  (``<artifact_url>/artifacts/<digest>``, and its dependency environment from
  ``<artifact_url>/environments/<key>`` when it has one) into an emptyDir, checks the
  digest, authenticating with the pod's projected identity token -- sent only over TLS
  to a server whose certificate chains to the trust anchors and names the identity
  endpoint (the artifact service presents that certificate);
- ``function``: the runtime (``python -m fnmesh.functions``) serving the handler on
  127.0.0.1:8080 only;
- ``fnmesh-proxy``: the replica proxy (``python -m fnmesh.platform.mesh.proxy``) taking
  inbound mTLS on 8143 and serving ``/ready``, ``/live`` and metrics on 8191; it gets its
  certificate from the identity endpoint with the projected token (audience
  ``identity.fnmesh.dev``), reports every second to the telemetry hub (always mTLS,
  so ``telemetry_url`` is reached over https) and is configured by the ``FNMESH_PROXY_*``
  variables of ``mesh.proxy.config``.

A revision's secrets are the Secrets of the same names (made by ``fn secret``): each is
a volume mounted read-only in the ``function`` container only, at
``/var/run/secrets/fnmesh/<name>`` (files 0440, readable through the pod's fsGroup), and
``secretEnv`` becomes ``secretKeyRef`` variables. The Deployment names secrets, never
holds their values.

Who may call a replica is the revision's visibility: a public one takes the platform's
public callers (the gateway and the activator), a private one nobody from outside. The
proxy reads that policy from a file; here it is the pod annotation ``fnmesh.dev/policy``
projected as a file by the downward API, so the policy travels with the pod.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fnmesh.platform.mesh.identity.names import component_identity
from fnmesh.platform.model.quantities import format_cpu, format_memory, parse_cpu, parse_memory
from fnmesh.platform.model.resources import LABEL_FUNCTION, LABEL_REVISION, Function, Revision
from fnmesh.platform.model.secrets import SECRETS_DIR, SecretRef, parse_secret_ref
from fnmesh.platform.runtime.kubernetes.config import ClusterConfig
from fnmesh.platform.runtime.kubernetes.labels import (
    function_labels,
    metadata,
    revision_labels,
    service_account_name,
)
from fnmesh.platform.runtime.kubernetes.traffic import (
    make_http_route_group,
    make_traffic_split,
    make_traffic_target,
)

__all__ = [
    "make_deployment",
    "make_http_route_group",
    "make_root_service",
    "make_service",
    "make_service_account",
    "make_traffic_split",
    "make_traffic_target",
]

IDENTITY_AUDIENCE = "identity.fnmesh.dev"
TOKEN_EXPIRATION_SECONDS = 3600
TOKEN_DIR = "/var/run/secrets/fnmesh.dev/identity"
TOKEN_FILE = f"{TOKEN_DIR}/token"
ARTIFACT_DIR = "/fnmesh/artifact"
SOURCE_DIR = f"{ARTIFACT_DIR}/source"
SITE_DIR = f"{ARTIFACT_DIR}/site"
RUNTIME_PORT = 8080
INBOUND_PORT = 8143  # never one of Linkerd's proxy ports (4140, 4143, 4190, 4191)
ADMIN_PORT = 8191
SERVICE_PORT = 80
GRACE_SECONDS = 10
RUNTIME_CONTAINER = "function"
PROXY_CONTAINER = "fnmesh-proxy"
FETCH_CONTAINER = "fetch"
LINKERD_INJECT = "linkerd.io/inject"
POLICY_ANNOTATION = "fnmesh.dev/policy"
POLICY_DIR = "/var/run/fnmesh.dev/policy"
POLICY_FILE = f"{POLICY_DIR}/policy.json"
STATS_PATH = "/v1/stats"
SECRET_MODE = 0o440  # owner root, group the pod's fsGroup: the function's user reads it
TRUST_ANCHORS_ENV = "FNMESH_TRUST_ANCHORS"  # what the fetch checks the artifact service with


# -- a revision's replicas --------------------------------------------------------------


def make_deployment(
    revision: Revision, cfg: ClusterConfig, *, replicas: int | None = None
) -> dict[str, Any]:
    """The Deployment running ``revision``'s replicas.

    ``replicas`` is the count to create it with (the revision's initial scale). Leave it
    None when updating an existing Deployment: ``spec.replicas`` is then left out, so
    applying the object never undoes what the autoscaler set through ``deployments/scale``.
    """
    if replicas is not None and replicas < 0:
        raise ValueError(f"replicas must be 0 or more, not {replicas}")
    annotations = {POLICY_ANNOTATION: policy_document(revision)}
    if cfg.mesh == "linkerd":
        annotations[LINKERD_INJECT] = "enabled"
    pod_spec: dict[str, Any] = {
        "serviceAccountName": _account(revision),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": math.ceil(revision.spec.timeout) + GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": cfg.run_as_user,
            "runAsGroup": cfg.run_as_user,
            "fsGroup": cfg.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [_fetch_container(revision, cfg)],
        "containers": [_runtime_container(revision, cfg), _proxy_container(revision, cfg)],
        "volumes": [
            {"name": "artifact", "emptyDir": {}},
            {"name": "function-tmp", "emptyDir": {}},
            {"name": "proxy-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            {
                "name": "policy",
                "downwardAPI": {
                    "items": [
                        {
                            "path": "policy.json",
                            "fieldRef": {
                                "fieldPath": f"metadata.annotations['{POLICY_ANNOTATION}']"
                            },
                        }
                    ]
                },
            },
            *_secret_volumes(revision),
            {
                "name": "identity-token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": IDENTITY_AUDIENCE,
                                "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                                "path": "token",
                            }
                        }
                    ]
                },
            },
        ],
    }
    template_meta: dict[str, Any] = {
        "labels": revision_labels(revision),
        "annotations": annotations,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(revision.name, revision, revision_labels(revision)),
        "spec": {
            **({"replicas": replicas} if replicas is not None else {}),
            "selector": {"matchLabels": {LABEL_REVISION: revision.name}},
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def _account(revision: Revision) -> str:
    return revision.spec.service_account or revision.spec.function


def policy_document(revision: Revision) -> str:
    """The replica proxy's authorization policy for ``revision`` (``mesh.policy``'s JSON)."""
    return json.dumps({"public": revision.spec.visibility == "public", "allow": []})


def stats_url(cfg: ClusterConfig) -> str:
    """Where replica proxies report: the telemetry hub, over mTLS."""
    return "https://" + cfg.telemetry_url.split("://", 1)[-1] + STATS_PATH


def _security_context() -> dict[str, Any]:
    """Every container: not root, nothing written outside its volumes, no way to gain
    privileges (no setuid, no capabilities), the runtime's default seccomp filter."""
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def runtime_resources(revision: Revision, cfg: ClusterConfig) -> dict[str, Any]:
    """The runtime container's limits (the revision's, else the cluster's defaults) and
    requests (the cluster's, never above the limits).

    The memory limit is what the kernel kills the runtime over, as in embedded mode;
    cpu over its limit is throttled. A pod's process count is the kubelet's
    ``podPidsLimit``, not a container field, so ``pids`` has no equivalent here.
    """
    asked = revision.spec.resources
    memory = asked.memory if asked.memory is not None else parse_memory(cfg.runtime_memory_limit)
    cpu = asked.cpu_millis if asked.cpu_millis is not None else parse_cpu(cfg.runtime_cpu_limit)
    return {
        "requests": {
            "cpu": format_cpu(min(parse_cpu(cfg.runtime_cpu), cpu)),
            "memory": format_memory(min(parse_memory(cfg.runtime_memory), memory)),
        },
        "limits": {"cpu": format_cpu(cpu), "memory": format_memory(memory)},
    }


def _env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def _secret_volume_name(secret: str) -> str:
    return f"secret-{secret}"  # a DNS label: secret names are at most 56 characters


def _secret_volumes(revision: Revision) -> list[dict[str, Any]]:
    return [
        {
            "name": _secret_volume_name(name),
            "secret": {"secretName": name, "defaultMode": SECRET_MODE},
        }
        for name in revision.spec.secrets
    ]


def _secret_mounts(revision: Revision) -> list[dict[str, Any]]:
    return [
        {"name": _secret_volume_name(name), "mountPath": f"{SECRETS_DIR}/{name}", "readOnly": True}
        for name in revision.spec.secrets
    ]


def _secret_env(revision: Revision) -> list[dict[str, Any]]:
    """``secretEnv`` as variables the kubelet fills from the Secrets (values never here)."""
    out = []
    for variable in sorted(revision.spec.secret_env):
        ref = parse_secret_ref(revision.spec.secret_env[variable])
        if isinstance(ref, SecretRef):  # validated when the function was accepted
            selector = {"name": ref.name, "key": ref.key}
            out.append({"name": variable, "valueFrom": {"secretKeyRef": selector}})
    return out


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _fetch_container(revision: Revision, cfg: ClusterConfig) -> dict[str, Any]:
    artifact = revision.spec.artifact
    args = [
        "--url", f"{cfg.artifact_url}/artifacts/{artifact.digest}",
        "--digest", artifact.digest,
        "--dest", SOURCE_DIR,
        "--token-file", TOKEN_FILE,
        "--server-identity", component_identity("identity", cfg.trust_domain),
    ]  # fmt: skip
    if artifact.environment:
        args += [
            "--environment-url", f"{cfg.artifact_url}/environments/{artifact.environment}",
            "--environment-dest", SITE_DIR,
        ]  # fmt: skip
    return {
        "name": FETCH_CONTAINER,
        "image": cfg.runtime_image,
        "imagePullPolicy": cfg.pull_policy,
        "command": ["python", "-m", "fnmesh.functions.fetch"],
        "args": args,
        "env": _env({TRUST_ANCHORS_ENV: cfg.trust_anchors} if cfg.trust_anchors else {}),
        "resources": {"requests": {"cpu": cfg.runtime_cpu, "memory": cfg.runtime_memory}},
        "securityContext": _security_context(),
        "volumeMounts": [
            {"name": "artifact", "mountPath": ARTIFACT_DIR},
            {"name": "identity-token", "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": "function-tmp", "mountPath": "/tmp"},
        ],
    }


def _runtime_container(revision: Revision, cfg: ClusterConfig) -> dict[str, Any]:
    spec = revision.spec
    args = [
        "--source",
        SOURCE_DIR,
        "--handler",
        spec.handler,
        "--host",
        "127.0.0.1",
        "--port",
        str(RUNTIME_PORT),
    ]
    if spec.artifact.environment:
        args += ["--site", SITE_DIR]
    if spec.concurrency > 0:
        args += ["--concurrency", str(spec.concurrency)]
    env = {name: spec.env[name] for name in sorted(spec.env)}
    env |= {"PORT": str(RUNTIME_PORT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    return {
        "name": RUNTIME_CONTAINER,
        "image": cfg.runtime_image,
        "imagePullPolicy": cfg.pull_policy,
        "command": ["python", "-m", "fnmesh.functions"],
        "args": args,
        "env": [*_env(env), *_secret_env(revision)],
        "resources": runtime_resources(revision, cfg),
        "securityContext": _security_context(),
        "volumeMounts": [
            {"name": "artifact", "mountPath": ARTIFACT_DIR, "readOnly": True},
            {"name": "function-tmp", "mountPath": "/tmp"},
            *_secret_mounts(revision),
        ],
    }


def _proxy_container(revision: Revision, cfg: ClusterConfig) -> dict[str, Any]:
    spec = revision.spec
    timeout = f"{spec.timeout:g}"
    env = {
        "FNMESH_PROXY_INBOUND_PORT": str(INBOUND_PORT),
        "FNMESH_PROXY_ADMIN_HOST": "0.0.0.0",  # the kubelet probes the pod's address
        "FNMESH_PROXY_ADMIN_PORT": str(ADMIN_PORT),
        "FNMESH_PROXY_UPSTREAM": f"127.0.0.1:{RUNTIME_PORT}",
        "FNMESH_PROXY_INBOUND_TLS": "true" if cfg.inbound_tls else "false",
        "FNMESH_PROXY_NAMESPACE": revision.namespace,
        "FNMESH_PROXY_FUNCTION": spec.function,
        "FNMESH_PROXY_REVISION": revision.name,
        "FNMESH_PROXY_CONCURRENCY": str(spec.concurrency),
        "FNMESH_PROXY_REQUEST_TIMEOUT": timeout,
        "FNMESH_PROXY_DRAIN_TIMEOUT": timeout,
        "FNMESH_PROXY_IDENTITY": cfg.identity(_account(revision), revision.namespace),
        "FNMESH_PROXY_IDENTITY_URL": cfg.identity_url,
        "FNMESH_PROXY_TRUST_DOMAIN": cfg.trust_domain,
        "FNMESH_PROXY_BOOTSTRAP_TOKEN_FILE": TOKEN_FILE,
        "FNMESH_PROXY_STATS_URL": stats_url(cfg),
        "FNMESH_PROXY_POLICY_FILE": POLICY_FILE,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if cfg.trust_anchors:
        env["FNMESH_PROXY_TRUST_ANCHORS"] = cfg.trust_anchors
    return {
        "name": PROXY_CONTAINER,
        "image": cfg.proxy_image,
        "imagePullPolicy": cfg.pull_policy,
        "command": ["python", "-m", "fnmesh.platform.mesh.proxy"],
        "ports": [
            {"name": "http", "containerPort": INBOUND_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": ADMIN_PORT, "protocol": "TCP"},
        ],
        "env": [*_env(env), _field_env("FNMESH_PROXY_REPLICA", "metadata.name")],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": ADMIN_PORT},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/live", "port": ADMIN_PORT},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": {"requests": {"cpu": cfg.proxy_cpu, "memory": cfg.proxy_memory}},
        "securityContext": _security_context(),
        "volumeMounts": [
            {"name": "identity-token", "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": "policy", "mountPath": POLICY_DIR, "readOnly": True},
            {"name": "proxy-tmp", "mountPath": "/tmp"},
        ],
    }


def make_service(revision: Revision) -> dict[str, Any]:
    """The Service in front of one revision's replica proxies: a TrafficSplit backend."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(revision.name, revision, revision_labels(revision)),
        "spec": {
            "selector": {LABEL_REVISION: revision.name},
            "ports": [_http_port()],
        },
    }


def _http_port() -> dict[str, Any]:
    return {"name": "http", "port": SERVICE_PORT, "targetPort": INBOUND_PORT, "protocol": "TCP"}


# -- a function's objects ---------------------------------------------------------------


def make_service_account(function: Function) -> dict[str, Any]:
    """The ServiceAccount the function's replicas run as; it names their mesh identity.

    Only for the function's own account: when ``spec.serviceAccount`` names an account
    that exists already, the operator leaves that one alone.
    """
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(
            service_account_name(function), function, function_labels(function.name)
        ),
        "automountServiceAccountToken": False,
    }


def make_root_service(function: Function) -> dict[str, Any]:
    """The apex Service of the function's TrafficSplit; it selects every revision's pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(function.name, function, function_labels(function.name)),
        "spec": {
            "selector": {LABEL_FUNCTION: function.name},
            "ports": [_http_port()],
        },
    }
