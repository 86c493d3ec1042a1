"""The autoscaler on a cluster: ``python -m fnmesh.platform.cluster.autoscaler``.

Its control listener (mTLS, ``FNMESH_LISTEN_PORT``) takes load (``POST /v1/demand``)
from the telemetry hub (the replica proxies' reports, relayed) and the activator (the
requests it holds, and pokes), and serves the revisions short of burst capacity to the
activator (``GET /v1/burst``); the autoscaler driver decides, and ``KubernetesScaler``
sets each revision's Deployment scale. Which revisions to size comes from
``RevisionFollower``.

Start: configuration, the store, the certificate, the listener, the driver, the follower.
Stop (SIGTERM): the follower, the driver, the listener, the certificate, the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from fnmesh.autoscaler.driver import Autoscaler
from fnmesh.autoscaler.settings import AutoscalerConfig
from fnmesh.platform.cluster.burst import PATH as BURST_PATH
from fnmesh.platform.cluster.burst import BurstHandler
from fnmesh.platform.cluster.certificates import ComponentIdentity
from fnmesh.platform.cluster.demand import PATH as DEMAND_PATH
from fnmesh.platform.cluster.demand import DemandHandler
from fnmesh.platform.cluster.follow import RevisionFollower
from fnmesh.platform.cluster.settings import AUTOSCALER_PORT, ClusterSettings
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.http import Handler, Peer, Request, Response, json_error
from fnmesh.platform.http import serve as serve_http
from fnmesh.platform.mesh.identity import IdentityRefused, component_identity
from fnmesh.platform.runtime.kubernetes.scaler import KubernetesScaler
from fnmesh.platform.shell import EXIT_START, listen, refuse, run
from fnmesh.platform.store import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

log = logging.getLogger("fnmesh.cluster.autoscaler")
NAME = "fnmesh autoscaler"


class ControlRoutes:
    """The control listener's handler: each path's own handler, else 404."""

    def __init__(self, routes: dict[bytes, Handler]) -> None:
        self.routes = routes

    async def __call__(self, request: Request, peer: Peer) -> Response:
        handler = self.routes.get(request.target.split(b"?", 1)[0])
        if handler is None:
            known = ", ".join(path.decode() for path in self.routes)
            return json_error(404, f"unknown path: the autoscaler serves {known}")
        return await handler(request, peer)


async def serve(settings: ClusterSettings, stop: asyncio.Event) -> int:
    try:
        client = KubeClient.from_environment(timeout=settings.request_timeout)
    except StoreError as error:
        return refuse(NAME, error, EXIT_START)
    store = ClusterStore(
        client,
        split_api_version=settings.split_api_version,
        platform_namespace=settings.platform_namespace,
        namespaces=settings.watch_namespaces,
    )
    me = ComponentIdentity("autoscaler", settings)
    follower = RevisionFollower(store)
    autoscaler = Autoscaler(KubernetesScaler(client), follower.ready, AutoscalerConfig())
    try:
        if not await me.obtain(stop):
            return 0
        activator = component_identity("activator", settings.trust_domain)
        hub = component_identity("telemetry", settings.trust_domain)
        handler = ControlRoutes(
            {
                DEMAND_PATH: DemandHandler(autoscaler, frozenset({activator, hub})),
                BURST_PATH: BurstHandler(
                    autoscaler.short_of_burst_capacity, frozenset({activator})
                ),
            }
        )
        try:
            sock = listen(settings.listen_host, settings.listen_port)
        except OSError as error:
            return refuse(NAME, error, EXIT_START)
        server = await serve_http(
            handler, settings.listen_host, 0, ssl=me.client.server_context(), sock=sock
        )
        autoscaler.start()
        follower.start(autoscaler)
        log.info("autoscaler on %s:%d (mTLS)", settings.listen_host, settings.listen_port)
        await stop.wait()
        await follower.close()
        await autoscaler.close()
        await server.close(1.0)
        return 0
    except IdentityRefused as error:
        return refuse(NAME, f"the identity endpoint refused: {error}", EXIT_START)
    finally:
        await me.close()
        store.close()


def main() -> int:
    return run(
        NAME,
        lambda: ClusterSettings.from_env(os.environ, port=AUTOSCALER_PORT),
        lambda shell, settings: serve(settings, shell.stopping),
    )


if __name__ == "__main__":
    sys.exit(main())
