"""The operator's configuration: ``ClusterConfig`` plus what only the operator needs.

Read once from the environment the chart sets (charts/fnmesh, "Component environment"):
the ``ClusterConfig`` fields, and

- ``FNMESH_GATEWAY_SERVICE_ACCOUNT``, ``FNMESH_ACTIVATOR_SERVICE_ACCOUNT``: the platform's
  accounts (in ``FNMESH_PLATFORM_NAMESPACE``) whose identities TrafficTargets let in;
- ``FNMESH_WATCH_NAMESPACES``: namespaces functions live in, comma-separated; empty for all;
- ``FNMESH_GATEWAY_DOMAIN``: the gateway's host-routing domain, for a function's URL
  (``http://<function>.<namespace>.<domain>/``);
- ``FNMESH_REQUEST_TIMEOUT``: seconds one call to the API server may take (default 10).

Every bad variable is reported at once, named, with what it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fnmesh.platform.model.errors import Problems, ValidationError
from fnmesh.platform.model.names import MAX_NAMESPACE_NAME, check_name
from fnmesh.platform.model.resources import Visibility
from fnmesh.platform.runtime.kubernetes.config import ClusterConfig

_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GATEWAY_ACCOUNT = "fnmesh-gateway"
ACTIVATOR_ACCOUNT = "fnmesh-activator"
GATEWAY_DOMAIN = "fn.localhost"
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    gateway_service_account: str = GATEWAY_ACCOUNT
    activator_service_account: str = ACTIVATOR_ACCOUNT
    watch_namespaces: tuple[str, ...] = ()
    gateway_domain: str = GATEWAY_DOMAIN
    request_timeout: float = REQUEST_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorConfig:
        """Read the operator's variables from ``env``; ValidationError names every bad one."""
        problems = Problems()
        try:
            cluster = ClusterConfig.from_env(env)
        except ValidationError as error:
            problems.errors.extend(error.errors)
            cluster = ClusterConfig()
        gateway = _account(env, "FNMESH_GATEWAY_SERVICE_ACCOUNT", GATEWAY_ACCOUNT, problems)
        activator = _account(env, "FNMESH_ACTIVATOR_SERVICE_ACCOUNT", ACTIVATOR_ACCOUNT, problems)
        namespaces = tuple(
            n.strip() for n in env.get("FNMESH_WATCH_NAMESPACES", "").split(",") if n.strip()
        )
        for namespace in namespaces:
            why = check_name(namespace, what="namespace", limit=MAX_NAMESPACE_NAME)
            if why:
                problems.add("FNMESH_WATCH_NAMESPACES", why)
        domain = env.get("FNMESH_GATEWAY_DOMAIN", "").strip() or GATEWAY_DOMAIN
        if not _DOMAIN.match(domain):
            problems.add(
                "FNMESH_GATEWAY_DOMAIN",
                f"must be a DNS name such as 'fn.example.com', not {domain!r}",
            )
        timeout = _seconds(env.get("FNMESH_REQUEST_TIMEOUT", ""), problems)
        problems.raise_if_any("the operator's environment")
        return cls(
            cluster=cluster,
            gateway_service_account=gateway,
            activator_service_account=activator,
            watch_namespaces=namespaces,
            gateway_domain=domain,
            request_timeout=timeout,
        )

    def allowed(self, visibility: Visibility) -> list[str]:
        """Identities a function of ``visibility`` lets in: the gateway and the activator
        for a public one; nobody from outside for a private one."""
        if visibility != "public":
            return []
        namespace = self.cluster.platform_namespace
        return [
            self.cluster.identity(self.gateway_service_account, namespace),
            self.cluster.identity(self.activator_service_account, namespace),
        ]

    def function_url(self, namespace: str, name: str) -> str:
        """Where the gateway serves a function, by host."""
        return f"http://{name}.{namespace}.{self.gateway_domain}/"


def _account(env: Mapping[str, str], name: str, default: str, problems: Problems) -> str:
    value = env.get(name, "").strip() or default
    why = check_name(value, what="service account", limit=63)
    if why:
        problems.add(name, why)
    return value


def _seconds(raw: str, problems: Problems) -> float:
    if not raw.strip():
        return REQUEST_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 300:
        problems.add("FNMESH_REQUEST_TIMEOUT", f"must be seconds above 0, at most 300, not {raw!r}")
        return REQUEST_TIMEOUT
    return value
