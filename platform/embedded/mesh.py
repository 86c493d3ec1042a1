"""The embedded platform's side of the mesh: identity, reports in, policy out.

- the trust anchor and issuer under ``<home>/identity`` (created on the first start),
  one-time bootstrap tokens and the HTTPS identity endpoint replica proxies certify with;
- the platform's own workload identities: the gateway's (its client certificate on every
  hop to a replica) and the telemetry hub's (the stats listener's certificate, which
  proxies check);
- the mTLS stats listener that proxies report to every second (``telemetry.server``);
- the policy files replica proxies authorize callers with (``runtime.local.policy``).
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fnmesh.activator import Activator
from fnmesh.platform.admission import Refused
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.http import HttpServer, serve
from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    Certifier,
    IdentityClient,
    InProcessEndpoint,
    OneTimeTokenVerifier,
    TokenIssuer,
    component_identity,
)
from fnmesh.platform.mesh.identity.service import IdentityService
from fnmesh.platform.runtime.local.mesh import MeshSettings
from fnmesh.platform.runtime.local.policy import PolicyWriter
from fnmesh.platform.store import Store
from fnmesh.platform.supervise import TaskBoard
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.server import StatsHandler

ANCHORS_FILE = "ca.crt"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class EmbeddedMesh:
    def __init__(
        self,
        home: Path,
        host: str,
        store: Store,
        hub: TelemetryHub,
        *,
        tasks: TaskBoard | None = None,
    ) -> None:
        self.tasks = tasks
        self.home = home
        self.directory = home / "identity"
        self.policy_dir = home / "run" / "policy"
        self.host = host
        self.store = store
        self.hub = hub
        self.settings: MeshSettings | None = None

    async def start(self) -> MeshSettings:
        """Identity first (everything else needs certificates), then stats and policy."""
        self.authority = CertificateAuthority.load_or_create(self.directory, _now())
        anchors = self.authority.trust_anchors_pem
        self.tokens = TokenIssuer()
        self.certifier = Certifier(self.authority, OneTimeTokenVerifier(self.tokens))
        scratch = self.directory / "scratch"
        scratch.mkdir(mode=0o700, exist_ok=True)
        self.service = IdentityService(self.certifier, scratch=scratch)
        await self.service.start(self.host, 0)
        local = InProcessEndpoint(self.certifier)
        self.gateway = IdentityClient(
            component_identity("gateway"),
            trust_anchors_pem=anchors,
            endpoint=local,
            credential="",
            scratch=scratch,
        )
        self.stats = IdentityClient(
            component_identity("telemetry"),
            trust_anchors_pem=anchors,
            endpoint=local,
            credential="",
            scratch=scratch,
        )
        await self.gateway.start()
        await self.stats.start()
        self.control = StatsHandler(self.hub)
        self.stats_server: HttpServer = await serve(
            self.control, self.host, 0, ssl=self.stats.server_context()
        )
        self.policy = PolicyWriter(
            self.store,
            self.policy_dir,
            self.authority.trust_domain,
            gateway=component_identity("gateway"),  # it checks tokens for private functions
            tasks=self.tasks,
        )
        self.policy.start()
        self.settings = MeshSettings(
            identity_url=f"https://{self.host}:{self.service.port}",
            trust_anchors=self.directory / ANCHORS_FILE,
            policy_dir=self.policy_dir,
            stats_url=f"https://{self.host}:{self.stats_server.port}/v1/stats",
            destinations_url=f"https://{self.host}:{self.stats_server.port}/v1/destinations",
            socket_dir=replica_folders(self.home),
            mint=self.mint,
            trust_domain=self.authority.trust_domain,
        )
        return self.settings

    def mint(self, identity: str) -> str:
        return self.tokens.mint(identity, _now())

    async def close(self) -> None:
        if self.settings is not None and self.settings.socket_dir is not None:
            shutil.rmtree(self.settings.socket_dir, ignore_errors=True)
            (self.home / "run" / "replicas.path").unlink(missing_ok=True)
        await self.policy.close()
        await self.stats_server.close(1.0)
        await self.gateway.close()
        await self.stats.close()
        await self.service.close()


class RouteDestinations:
    """Where a function's replicas are, from the gateway's route table; at zero, the
    activator's admission waits (poking the autoscaler) until a replica is ready."""

    def __init__(self, table: RouteTable, activator: Activator) -> None:
        self.table = table
        self.activator = activator

    async def lookup(
        self, namespace: str, function: str, activate: str | None
    ) -> dict[str, Any] | None:
        routes = self.table.get(namespace, function)
        if routes is None:
            return None
        if activate and activate in dict(routes.backends) and not routes.endpoints.get(activate):
            concurrency = routes.concurrency.get(activate, 0)
            with contextlib.suppress(Refused):
                async with self.activator.admit(namespace, function, activate, concurrency):
                    pass
            routes = self.table.get(namespace, function) or routes
        return {
            "namespace": namespace,
            "function": function,
            "timeout": routes.timeout + 1.0,
            "revisions": [
                {
                    "name": name,
                    "weight": weight,
                    "endpoints": [
                        {"name": e.name, "host": e.host, "port": e.port, "identity": e.identity}
                        for e in routes.endpoints.get(name, ())
                    ],
                }
                for name, weight in routes.backends
            ],
        }


# a replica's folder adds "/r-xxxxxx/sock/runtime.sock"; Unix socket paths cap at 107
_MAX_FOLDER = 72


def replica_folders(home: Path) -> Path:
    """Where replicas' folders (their sockets and sandbox roots) live, emptied of what a
    run that did not stop left: ``<home>/run/replicas`` when that path is short enough for
    Unix sockets, else a temporary folder whose path is recorded in the home, so that the
    next start removes it even after a ``kill -9``."""
    record = home / "run" / "replicas.path"
    with contextlib.suppress(OSError, ValueError):
        left = Path(record.read_text().strip())
        if left.name.startswith("fnmesh-") and left.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(left, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
    folder = home / "run" / "replicas"
    shutil.rmtree(folder, ignore_errors=True)
    if len(str(folder)) <= _MAX_FOLDER:
        folder.mkdir(parents=True, mode=0o700)
        return folder
    folder = Path(tempfile.mkdtemp(prefix="fnmesh-"))  # 0700
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(str(folder))
    return folder
