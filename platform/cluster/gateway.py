"""The gateway on a cluster: ``python -m fnmesh.platform.cluster.gateway``.

Routes come from the cluster (``RouteSource``: each revision's Service is its endpoint),
replicas are reached over mTLS with the gateway's component certificate, and a revision
without a ready replica, or short of burst capacity by the activator's choice (polled
from it every second, ``burst.BurstFeed``), goes through the activator
(``RemoteAdmission``).

The shell (``fnmesh.platform.shell``) reads the settings once and runs the stop steps.
Start: the store, the certificate, the routes (first sync), the listener.
Stop (SIGTERM), last-started first: the listener drains, then admission, routes,
certificate, store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from fnmesh.platform.cluster.admission import RemoteAdmission
from fnmesh.platform.cluster.burst import BurstFeed
from fnmesh.platform.cluster.certificates import ComponentIdentity
from fnmesh.platform.cluster.endpoints import RouteSource
from fnmesh.platform.cluster.service_hosts import ServiceHosts
from fnmesh.platform.cluster.settings import GATEWAY_PORT, ClusterSettings
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.mesh.identity import IdentityRefused, component_identity
from fnmesh.platform.shell import CannotStart, Shell, run
from fnmesh.platform.store import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

log = logging.getLogger("fnmesh.cluster.gateway")
NAME = "fnmesh gateway"
MAX_BODY_BYTES = 10 * 1024 * 1024
UPSTREAM_TIMEOUT = 60.0
DRAIN_TIMEOUT = 10.0
SYNC_TIMEOUT = 30.0


async def synced(routes: RouteTable, stop: asyncio.Event, timeout: float = SYNC_TIMEOUT) -> bool:
    """Wait for the route table's first sync; False when stopped or out of time."""
    waits = {asyncio.ensure_future(routes.synced.wait()), asyncio.ensure_future(stop.wait())}
    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    return routes.synced.is_set() and not stop.is_set()


async def certified(me: ComponentIdentity, stop: asyncio.Event) -> bool:
    """The component's first certificate (False when stopped first); CannotStart when
    the identity endpoint refuses it."""
    try:
        return await me.obtain(stop)
    except IdentityRefused as error:
        raise CannotStart(f"the identity endpoint refused: {error}") from None


async def serve(shell: Shell, settings: ClusterSettings) -> None:
    client = KubeClient.from_environment(timeout=settings.request_timeout)
    store = ClusterStore(
        client,
        split_api_version=settings.split_api_version,
        platform_namespace=settings.platform_namespace,
        namespaces=settings.watch_namespaces,
    )
    shell.on_stop("store", store.close)
    me = ComponentIdentity("gateway", settings)
    shell.on_stop("certificate", me.close)
    if not await certified(me, shell.stopping):
        return
    tls = me.client.client_context()
    routes = RouteTable(RouteSource(store, ServiceHosts(settings.service_hosts)))
    activator = component_identity("activator", settings.trust_domain)
    burst = BurstFeed(settings.addresses.activator_url, tls=tls, server_identity=activator)
    admission = RemoteAdmission(
        settings.addresses.activator_url,
        tls=tls,
        server_identity=activator,
        routes=routes,
        timeout_of=lambda ns, fn: r.timeout if (r := routes.get(ns, fn)) else 30.0,
        burst=burst,
    )
    gateway = Gateway(
        routes,
        domain=settings.gateway_domain,
        max_body_bytes=MAX_BODY_BYTES,
        upstream_timeout=UPSTREAM_TIMEOUT,
        tls=tls,
        admission=admission,
    )
    routes.start()
    shell.on_stop("routes", routes.close)
    shell.on_stop("admission", admission.close)
    if not await synced(routes, shell.stopping):
        if shell.stopping.is_set():
            return
        raise CannotStart("the routes could not be read from the cluster")
    sock = shell.listen(settings.listen_host, settings.listen_port)
    await gateway.start(settings.listen_host, 0, sock=sock)
    burst.start()
    shell.on_stop("gateway", lambda: gateway.close(DRAIN_TIMEOUT))
    log.info("gateway on %s:%d", settings.listen_host, settings.listen_port)
    await shell.wait()


def main() -> int:
    return run(
        NAME,
        lambda: ClusterSettings.from_env(os.environ, port=GATEWAY_PORT),
        serve,
        start_errors=(OSError, StoreError),
    )


if __name__ == "__main__":
    sys.exit(main())
