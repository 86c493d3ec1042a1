"""What a replica's proxy is told: the mesh settings of the platform, per replica (pure).

In embedded mode every replica is a pair of processes: the function runtime on loopback
and, in front of it, the replica proxy (mTLS, authorization, limits, metrics, tap,
stats). ``proxy_env`` is the proxy's whole configuration as ``FNMESH_PROXY_*`` variables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fnmesh.platform.mesh.identity.names import identity_name

PROXY_EXIT_REASONS = {
    1: "its proxy could not listen",
    2: "its proxy's configuration was refused",
    5: "its proxy's identity was refused",
}


@dataclass(frozen=True, slots=True)
class MeshSettings:
    identity_url: str
    trust_anchors: Path
    policy_dir: Path
    stats_url: str
    mint: Callable[[str], str]  # a one-time bootstrap token for an identity
    destinations_url: str = ""  # where a proxy's egress asks where functions are
    socket_dir: Path | None = None  # egress sockets (short paths: Unix sockets cap at 107)
    trust_domain: str = "fnmesh.local"
    stats_interval: float = 1.0

    def policy_file(self, namespace: str, function: str) -> Path:
        return self.policy_dir / namespace / f"{function}.json"


def replica_identity(
    namespace: str, function: str, service_account: str | None, trust_domain: str
) -> str:
    return identity_name(service_account or function, namespace, trust_domain)


def proxy_env(
    mesh: MeshSettings,
    *,
    namespace: str,
    function: str,
    revision: str,
    replica: str,
    identity: str,
    upstream: str,
    host: str,
    concurrency: int,
    timeout: float,
    drain_timeout: float,
    egress_socket: Path | None = None,
    egress_owner: int | None = None,
) -> dict[str, str]:
    egress = {}
    if egress_socket is not None and mesh.destinations_url:
        egress = {
            "FNMESH_PROXY_EGRESS_SOCKET": str(egress_socket),
            "FNMESH_PROXY_DESTINATIONS_URL": mesh.destinations_url,
        }
        if egress_owner is not None:
            egress["FNMESH_PROXY_EGRESS_OWNER"] = str(egress_owner)
    return egress | {
        "FNMESH_PROXY_INBOUND_HOST": host,
        "FNMESH_PROXY_INBOUND_PORT": "0",
        "FNMESH_PROXY_ADMIN_HOST": host,
        "FNMESH_PROXY_ADMIN_PORT": "0",
        "FNMESH_PROXY_UPSTREAM": upstream,
        "FNMESH_PROXY_IDENTITY": identity,
        "FNMESH_PROXY_IDENTITY_URL": mesh.identity_url,
        "FNMESH_PROXY_TRUST_DOMAIN": mesh.trust_domain,
        "FNMESH_PROXY_TRUST_ANCHORS": str(mesh.trust_anchors),
        "FNMESH_PROXY_BOOTSTRAP_TOKEN": mesh.mint(identity),
        "FNMESH_PROXY_NAMESPACE": namespace,
        "FNMESH_PROXY_FUNCTION": function,
        "FNMESH_PROXY_REVISION": revision,
        "FNMESH_PROXY_REPLICA": replica,
        "FNMESH_PROXY_CONCURRENCY": str(concurrency),
        "FNMESH_PROXY_REQUEST_TIMEOUT": f"{timeout:g}",
        "FNMESH_PROXY_DRAIN_TIMEOUT": f"{drain_timeout:g}",
        "FNMESH_PROXY_STATS_URL": mesh.stats_url,
        "FNMESH_PROXY_STATS_INTERVAL": f"{mesh.stats_interval:g}",
        "FNMESH_PROXY_POLICY_FILE": str(mesh.policy_file(namespace, function)),
    }
