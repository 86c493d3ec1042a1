"""The API process on a cluster: ``python -m fnmesh.platform.cluster.api``.

One port (``FNMESH_LISTEN_PORT``) serves the REST API (``platform.api``, unchanged); the
identity endpoint has its own HTTPS port (``FNMESH_IDENTITY_PORT``), and so has the
artifact service (``/artifacts/...``, ``/environments/...``, for the replicas' init
containers, ``FNMESH_ARTIFACT_PORT``): replicas send it their identity token, so it is
served over TLS only, presenting the identity endpoint's certificate (renewed in place).
Resources live in the cluster (``ClusterStore``); builds, artifacts and environments on
the API's volume (``FNMESH_DATA_DIR``). The admin token is the chart's Secret
(``FNMESH_API_TOKEN``), kept as a Token object. No controller runs here: on a cluster
the operator stamps revisions and writes status. ``fn stat`` and ``fn tap`` read the
telemetry hub (``FNMESH_TELEMETRY_URL``) over mTLS with the API's own component
certificate, which it issues itself (it holds the authority).

The shell (``fnmesh.platform.shell``) reads the settings once, binds the listeners and
runs the stop steps. Start, in order: store and token, builder, the identity endpoint,
the artifact listener, the HTTP listener. Stop, in reverse: the listeners stop accepting
and finish requests, then the identity endpoint, then the store's client.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path

from starlette.types import ASGIApp

from fnmesh.platform.api import ApiDeps, build_app
from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.build import Builder, BuildLimits
from fnmesh.platform.cluster.artifacts import ArtifactService
from fnmesh.platform.cluster.identity import ClusterVerifier, load_authority
from fnmesh.platform.cluster.pod_logs import PodLogs
from fnmesh.platform.cluster.settings import ApiSettings
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.mesh.identity import (
    AuthorityError,
    Certifier,
    IdentityClient,
    InProcessEndpoint,
    component_identity,
)
from fnmesh.platform.mesh.identity.service import IdentityService
from fnmesh.platform.mesh.identity.tokenreview import KubernetesTokenReviews
from fnmesh.platform.shell import AsgiServer, Shell, adopt_token, run
from fnmesh.platform.store import StoreError
from fnmesh.platform.store.kubernetes import KubeClient
from fnmesh.platform.store.kubernetes_secrets import KubernetesSecrets
from fnmesh.platform.telemetry.client import HubClient

__all__ = ["ClusterApi", "adopt_token", "main", "serve"]

log = logging.getLogger("fnmesh.cluster.api")
NAME = "fnmesh api"
ADMIN_TOKEN = "admin"


class ClusterApi:
    """The API on a cluster's store; with ``identity`` and ``artifacts`` in the cluster."""

    def __init__(
        self,
        settings: ApiSettings,
        client: KubeClient,
        *,
        identity: bool = True,
        artifacts: bool = True,
        limits: BuildLimits | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.with_identity = identity
        self.with_artifacts = artifacts
        self.limits = limits or BuildLimits()
        cluster = settings.cluster
        self.store = ClusterStore(
            client,
            split_api_version=cluster.split_api_version,
            platform_namespace=cluster.platform_namespace,
            namespaces=cluster.watch_namespaces,
        )
        self.builder = Builder(settings.data_dir / "build", limits=self.limits)
        self.identity: IdentityService | None = None
        self.me: IdentityClient | None = None  # the API's own certificate (for the hub)
        self.telemetry: HubClient | None = None
        self._private: Path | None = None
        self._servers: list[AsgiServer] = []

    def app(self) -> ASGIApp:
        """The ASGI app of the HTTP port: the API."""
        secrets = KubernetesSecrets(self.client)
        deps = ApiDeps(
            store=self.store,
            tokens=Tokens(self.store),
            deploy=DeployService(self.store, self.builder, self.limits, secrets),
            builder=self.builder,
            logbook=PodLogs(self.client),
            max_bundle_bytes=self.limits.max_bundle_bytes,
            secrets=secrets,
            telemetry=self.telemetry,
        )
        return build_app(deps)

    def artifacts_app(self) -> ASGIApp:
        """The ASGI app of the artifact port (served over TLS only)."""
        service = ArtifactService(
            store=self.store,
            reviews=KubernetesTokenReviews(self.client.api),
            artifact_dir=self.builder.artifact_dir,
            environment_dir=self.builder.envs.path,
            cache=self.settings.data_dir / "artifact-tars",
            audience=self.settings.audience,
        )
        return service.app()

    async def start(self, sock: socket.socket, artifact_sock: socket.socket | None = None) -> None:
        """Serve the API on ``sock`` and, with ``artifacts``, the artifact service over TLS
        on ``artifact_sock`` (which then must be given)."""
        if self.with_artifacts and (artifact_sock is None or not self.with_identity):
            raise ValueError(
                "the artifact service needs its own socket and the identity endpoint's "
                "certificate: replicas send it their token, so it is served over TLS only"
            )
        if self.settings.api_token:
            await asyncio.to_thread(adopt_token, self.store, ADMIN_TOKEN, self.settings.api_token)
        if self.with_identity:
            await self._start_identity()
            await self._start_telemetry()
        app = self.app()
        if self.with_artifacts and artifact_sock is not None and self.identity is not None:
            await self._serve(self.artifacts_app(), artifact_sock, self.identity.ssl_context())
        await self._serve(app, sock)

    async def _serve(
        self, app: ASGIApp, sock: socket.socket, tls: ssl.SSLContext | None = None
    ) -> None:
        server = AsgiServer(app, tls=tls)
        await server.start(sock)
        self._servers.append(server)

    async def _start_identity(self) -> None:
        cluster = self.settings.cluster
        self._private = Path(tempfile.mkdtemp(prefix="fnmesh-identity-"))
        authority = load_authority(
            self.settings.ca_dir,
            self._private / "ca",
            trust_domain=cluster.trust_domain,
            now=datetime.datetime.now(datetime.UTC),
        )
        verifier = ClusterVerifier(
            KubernetesTokenReviews(self.client.api),
            accounts=self.settings.accounts.by_component(),
            platform_namespace=cluster.platform_namespace,
            trust_domain=cluster.trust_domain,
            audience=self.settings.audience,
        )
        scratch = self._private / "scratch"
        scratch.mkdir(mode=0o700)
        self.identity = IdentityService(Certifier(authority, verifier), scratch=scratch)
        await self.identity.start(cluster.listen_host, self.settings.identity_port)

    async def _start_telemetry(self) -> None:
        """The API's own certificate, and the hub's client that presents it."""
        assert self.identity is not None and self._private is not None
        cluster = self.settings.cluster
        self.me = IdentityClient(
            component_identity("api", cluster.trust_domain),
            trust_anchors_pem=self.identity.certifier.authority.trust_anchors_pem,
            endpoint=InProcessEndpoint(self.identity.certifier),
            credential="",
            scratch=self._private / "scratch",
        )
        await self.me.start()
        self.telemetry = HubClient(
            cluster.addresses.telemetry_url,
            tls=self.me.client_context(),
            server_identity=component_identity("telemetry", cluster.trust_domain),
        )

    async def stop(self, timeout: float = 10.0) -> None:
        servers, self._servers = self._servers, []
        await asyncio.gather(*(server.stop(timeout) for server in servers))
        if self.telemetry is not None:
            await self.telemetry.close()
        if self.me is not None:
            await self.me.close()
        if self.identity is not None:
            await self.identity.close()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
        self.store.close()


async def serve(shell: Shell, settings: ApiSettings) -> None:
    cluster = settings.cluster
    client = KubeClient.from_environment(timeout=cluster.request_timeout)
    api = ClusterApi(settings, client)
    shell.on_stop("API", api.stop)
    sock = shell.listen(cluster.listen_host, cluster.listen_port)
    artifact_sock = shell.listen(cluster.listen_host, settings.artifact_port)
    await api.start(sock, artifact_sock)
    log.info(
        "API on %s:%d, identity endpoint on :%d, artifacts on :%d (TLS), store: the cluster",
        cluster.listen_host,
        cluster.listen_port,
        settings.identity_port,
        settings.artifact_port,
    )
    await shell.wait()


def main() -> int:
    return run(
        NAME,
        lambda: ApiSettings.from_env(os.environ),
        serve,
        start_errors=(OSError, AuthorityError, StoreError),
    )


if __name__ == "__main__":
    sys.exit(main())
