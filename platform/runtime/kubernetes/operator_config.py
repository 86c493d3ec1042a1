"""The operator's configuration: ``ClusterConfig`` plus what only the operator needs.

Read once from the environment the chart sets (charts/fnmesh, "Component environment"):
the ``ClusterConfig`` fields, and

- ``FNMESH_GATEWAY_SERVICE_ACCOUNT``, ``FNMESH_ACTIVATOR_SERVICE_ACCOUNT``: the platform's
  accounts (in ``FNMESH_PLATFORM_NAMESPACE``) whose identities TrafficTargets let in;
- ``FNMESH_WATCH_NAMESPACES``: namespaces functions live in, comma-separated; empty for all;
- ``FNMESH_GATEWAY_DOMAIN``: the gateway's host-routing domain, for a function's URL
  (``http://<function>.<namespace>.<domain>/``);
- ``FNMESH_REQUEST_TIMEOUT``: seconds one call to the API server may take (default 10);
- ``FNMESH_TELEMETRY_URL``: the telemetry hub the controller reads a canary's golden
  metrics from (``http(s)://host:port``, see ``controller.remote_metrics``); empty: no
  metrics, so a canary rollout waits at its first step (``TooFewRequests``);
  ``FNMESH_TELEMETRY_CA_FILE``: the trust anchors of an ``https`` hub (else the system's);
- ``FNMESH_KEEP_REVISIONS``: old revisions a function keeps (default 10);
- ``FNMESH_RETIRE_GRACE``: seconds a revision that lost its traffic keeps its replicas
  (default 5);
- ``FNMESH_RESYNC_INTERVAL``: seconds between looks at every function, events or not
  (default 30).

Every bad variable is reported at once, named, with what it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fnmesh.platform.controller.collect import DEFAULT_KEEP
from fnmesh.platform.model.errors import Problems, ValidationError
from fnmesh.platform.model.names import MAX_NAMESPACE_NAME, check_name
from fnmesh.platform.model.resources import Visibility
from fnmesh.platform.runtime.kubernetes.config import ClusterConfig

_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GATEWAY_ACCOUNT = "fnmesh-gateway"
ACTIVATOR_ACCOUNT = "fnmesh-activator"
GATEWAY_DOMAIN = "fn.localhost"
REQUEST_TIMEOUT = 10.0
RETIRE_GRACE = 5.0
RESYNC_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    gateway_service_account: str = GATEWAY_ACCOUNT
    activator_service_account: str = ACTIVATOR_ACCOUNT
    watch_namespaces: tuple[str, ...] = ()
    gateway_domain: str = GATEWAY_DOMAIN
    request_timeout: float = REQUEST_TIMEOUT
    telemetry_url: str | None = None
    telemetry_ca_file: str | None = None
    keep_revisions: int = DEFAULT_KEEP
    retire_grace: float = RETIRE_GRACE
    resync_interval: float = RESYNC_INTERVAL

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
        timeout = _seconds(env, "FNMESH_REQUEST_TIMEOUT", REQUEST_TIMEOUT, 300, problems)
        # checked with the cluster's settings (ClusterConfig.telemetry_url): set, it is
        # where the controller also reads a canary's golden metrics
        telemetry = env.get("FNMESH_TELEMETRY_URL", "").strip() or None
        ca_file = env.get("FNMESH_TELEMETRY_CA_FILE", "").strip() or None
        keep = _count(env, "FNMESH_KEEP_REVISIONS", DEFAULT_KEEP, problems)
        grace = _seconds(env, "FNMESH_RETIRE_GRACE", RETIRE_GRACE, 600, problems, zero=True)
        resync = _seconds(env, "FNMESH_RESYNC_INTERVAL", RESYNC_INTERVAL, 3600, problems)
        problems.raise_if_any("the operator's environment")
        return cls(
            cluster=cluster,
            gateway_service_account=gateway,
            activator_service_account=activator,
            watch_namespaces=namespaces,
            gateway_domain=domain,
            request_timeout=timeout,
            telemetry_url=telemetry,
            telemetry_ca_file=ca_file,
            keep_revisions=keep,
            retire_grace=grace,
            resync_interval=resync,
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


def _seconds(
    env: Mapping[str, str],
    name: str,
    default: float,
    most: float,
    problems: Problems,
    *,
    zero: bool = False,
) -> float:
    raw = env.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0 if zero else value > 0) or not value <= most:
        low = "of 0 or more" if zero else "above 0"
        problems.add(name, f"must be seconds {low}, at most {most:g}, not {raw!r}")
        return default
    return value


def _count(env: Mapping[str, str], name: str, default: int, problems: Problems) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        problems.add(name, f"must be a whole number from 1 to 1000, not {raw!r}")
        return default
    return int(raw)
