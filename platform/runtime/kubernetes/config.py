"""What the operator needs to know about the cluster to build a revision's objects.

``ClusterConfig`` is a frozen value with defaults that match the Helm chart's; the operator
reads it once from its environment with ``from_env`` (the chart sets ``FNMESH_*`` variables
named after the fields), and every builder takes it as an input.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fnmesh.platform.model.errors import Problems
from fnmesh.platform.model.names import MAX_NAMESPACE_NAME, check_name
from fnmesh.platform.model.quantities import parse_cpu, parse_memory

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
Mesh = Literal["fnmesh", "linkerd"]

PULL_POLICIES: tuple[PullPolicy, ...] = ("Always", "IfNotPresent", "Never")
MESHES: tuple[Mesh, ...] = ("fnmesh", "linkerd")
# Versions of split.smi-spec.io whose TrafficSplit has the shape the builders write
# (spec.service plus backends of {service, weight}); Linkerd's SMI extension serves v1alpha2.
SPLIT_API_VERSIONS = (
    "split.smi-spec.io/v1alpha2",
    "split.smi-spec.io/v1alpha3",
    "split.smi-spec.io/v1alpha4",
)
ENV_PREFIX = "FNMESH_"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Images, addresses and policies shared by every function the operator runs."""

    runtime_image: str = "fnmesh/runtime:0.1.0"
    proxy_image: str = "fnmesh/platform:0.1.0"
    pull_policy: PullPolicy = "IfNotPresent"
    platform_namespace: str = "fnmesh-system"
    api_url: str = "http://fnmesh-api.fnmesh-system.svc:8081"
    artifact_url: str = "https://fnmesh-api.fnmesh-system.svc:8444"  # https only: tokens
    identity_url: str = "https://fnmesh-api.fnmesh-system.svc:8443"
    telemetry_url: str = "https://fnmesh-telemetry.fnmesh-system.svc:8091"  # proxies report
    trust_domain: str = "fnmesh.local"
    trust_anchors: str = ""  # PEM the proxies verify the identity endpoint with; "" = unset
    mesh: Mesh = "fnmesh"  # "linkerd": Linkerd injects its proxy and enforces the splits
    split_api_version: str = "split.smi-spec.io/v1alpha4"
    runtime_cpu: str = "50m"  # requested by a replica's runtime (at most its limit)
    runtime_memory: str = "64Mi"
    runtime_cpu_limit: str = "1"  # limits of a runtime whose revision sets none
    runtime_memory_limit: str = "256Mi"
    proxy_cpu: str = "10m"
    proxy_memory: str = "32Mi"
    run_as_user: int = 65532

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClusterConfig:
        """Read ``FNMESH_<FIELD>`` variables from ``env``; unset ones keep their defaults.

        Raises ValidationError naming every bad variable and what it accepts.
        """
        problems = Problems()
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = env_name(field.name)
            if name not in env:
                continue
            raw = env[name].strip()
            if field.name == "run_as_user":
                if raw.isdigit() and int(raw) > 0:
                    values[field.name] = int(raw)
                else:
                    problems.add(name, f"must be a user id above 0 (not root), not {raw!r}")
            else:
                values[field.name] = raw.rstrip("/") if field.name.endswith("_url") else raw
        config = cls(**values)
        for field_name, message in config.problems():
            problems.add(env_name(field_name), message)
        problems.raise_if_any("the operator's environment")
        return config

    def problems(self) -> list[tuple[str, str]]:
        """Every field that holds something the cluster would refuse: (field, message)."""
        found: list[tuple[str, str]] = []
        for field in ("runtime_image", "proxy_image"):
            value = getattr(self, field)
            if not value or any(c.isspace() for c in value):
                found.append(
                    (
                        field,
                        f"must be an image reference such as "
                        f"'registry.example/fnmesh/runtime:0.1.0', not {value!r}",
                    )
                )
        if self.pull_policy not in PULL_POLICIES:
            found.append(
                (
                    "pull_policy",
                    f"must be one of {', '.join(PULL_POLICIES)}, not {self.pull_policy!r}",
                )
            )
        why = check_name(self.platform_namespace, what="namespace", limit=MAX_NAMESPACE_NAME)
        if why:
            found.append(("platform_namespace", why))
        for field in ("api_url", "artifact_url", "identity_url", "telemetry_url"):
            value = getattr(self, field)
            if not value.startswith(("http://", "https://")) or value.endswith("/"):
                found.append(
                    (
                        field,
                        f"must be an http:// or https:// URL without a trailing '/', not {value!r}",
                    )
                )
        if not self.artifact_url.startswith("https://"):
            found.append(
                (
                    "artifact_url",
                    "must be https://: replicas send their identity token to the artifact "
                    f"service, never in plaintext; not {self.artifact_url!r}",
                )
            )
        if not _DOMAIN.match(self.trust_domain):
            found.append(
                (
                    "trust_domain",
                    f"must be a DNS name such as 'fnmesh.local', not {self.trust_domain!r}",
                )
            )
        if self.trust_anchors and "-----BEGIN CERTIFICATE-----" not in self.trust_anchors:
            found.append(
                ("trust_anchors", "must be PEM certificates (-----BEGIN CERTIFICATE-----) or empty")
            )
        if self.mesh not in MESHES:
            found.append(("mesh", f"must be one of {', '.join(MESHES)}, not {self.mesh!r}"))
        if self.split_api_version not in SPLIT_API_VERSIONS:
            found.append(
                (
                    "split_api_version",
                    f"must be one of {', '.join(SPLIT_API_VERSIONS)}, "
                    f"not {self.split_api_version!r}",
                )
            )
        for field in ("runtime_cpu", "runtime_memory", "proxy_cpu", "proxy_memory"):
            value = getattr(self, field)
            if not _QUANTITY.match(value):
                found.append(
                    (field, f"must be a Kubernetes quantity such as '50m' or '64Mi', not {value!r}")
                )
        for field, parse in (
            ("runtime_cpu", parse_cpu),
            ("runtime_cpu_limit", parse_cpu),
            ("runtime_memory", parse_memory),
            ("runtime_memory_limit", parse_memory),
        ):
            try:
                parse(getattr(self, field))
            except ValueError as error:
                if field.endswith("_limit"):  # the others were reported above
                    found.append((field, str(error)))
        return found

    def identity(self, service_account: str, namespace: str) -> str:
        """The mesh identity of a workload running as ``service_account`` in ``namespace``."""
        return f"{service_account}.{namespace}.serviceaccount.identity.{self.trust_domain}"

    @property
    def inbound_tls(self) -> bool:
        """Whether replica proxies terminate mTLS themselves (Linkerd's proxy does it else)."""
        return self.mesh == "fnmesh"


def env_name(field: str) -> str:
    """The environment variable that sets ``field``: ``api_url`` -> ``FNMESH_API_URL``."""
    return ENV_PREFIX + field.upper()
