"""The activator on a cluster: ``python -m fnmesh.platform.cluster.activator``.

It follows the routes like the gateway (to know when a revision has ready replicas),
grants the gateway admission over mTLS (``AdmissionHandler``, gateway's identity only),
sends the demand it sees to the autoscaler (``RemoteDemand``) and reads the revisions
short of burst capacity from it (``BurstFeed``), which it serves on to the gateway.

Start: configuration, the store, the certificate, the routes (first sync), the listener.
Stop (SIGTERM): the listener stops, leases end, then demand, routes, certificate, store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from fnmesh.activator import Activator, ActivatorConfig
from fnmesh.platform.cluster.admission import AdmissionHandler
from fnmesh.platform.cluster.burst import BurstFeed
from fnmesh.platform.cluster.certificates import ComponentIdentity
from fnmesh.platform.cluster.demand import RemoteDemand
from fnmesh.platform.cluster.endpoints import RouteSource
from fnmesh.platform.cluster.gateway import synced
from fnmesh.platform.cluster.service_hosts import ServiceHosts
from fnmesh.platform.cluster.settings import ACTIVATOR_PORT, ClusterSettings
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.http import serve as serve_http
from fnmesh.platform.mesh.identity import IdentityRefused, component_identity
from fnmesh.platform.shell import EXIT_START, listen, refuse, run
from fnmesh.platform.store import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

log = logging.getLogger("fnmesh.cluster.activator")
NAME = "fnmesh activator"
DRAIN_TIMEOUT = 10.0


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
    me = ComponentIdentity("activator", settings)
    routes = RouteTable(RouteSource(store, ServiceHosts(settings.service_hosts)))
    try:
        if not await me.obtain(stop):
            return 0
        domain = settings.trust_domain
        autoscaler = component_identity("autoscaler", domain)
        tls = me.client.client_context()
        demand = RemoteDemand(
            settings.addresses.autoscaler_url, tls=tls, server_identity=autoscaler
        )
        burst = BurstFeed(settings.addresses.autoscaler_url, tls=tls, server_identity=autoscaler)
        activator = Activator(routes, demand, ActivatorConfig(), burst=burst)
        routes.listen(activator.refresh)
        handler = AdmissionHandler(
            activator, frozenset({component_identity("gateway", domain)}), burst=burst.short
        )
        routes.start()
        if not await synced(routes, stop):
            if stop.is_set():
                return 0
            return refuse(NAME, "the routes could not be read from the cluster", EXIT_START)
        try:
            sock = listen(settings.listen_host, settings.listen_port)
        except OSError as error:
            return refuse(NAME, error, EXIT_START)
        server = await serve_http(
            handler, settings.listen_host, 0, ssl=me.client.server_context(), sock=sock
        )
        demand.start()
        burst.start()
        activator.start()
        handler.start()
        log.info("activator on %s:%d (mTLS)", settings.listen_host, settings.listen_port)
        await stop.wait()
        await server.close(DRAIN_TIMEOUT)
        await handler.close()
        await activator.close()
        await burst.close()
        await demand.close()
        return 0
    except IdentityRefused as error:
        return refuse(NAME, f"the identity endpoint refused: {error}", EXIT_START)
    finally:
        await routes.close()
        await me.close()
        store.close()


def main() -> int:
    return run(
        NAME,
        lambda: ClusterSettings.from_env(os.environ, port=ACTIVATOR_PORT),
        lambda shell, settings: serve(settings, shell.stopping),
    )


if __name__ == "__main__":
    sys.exit(main())
