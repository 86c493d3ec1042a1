"""The gateway on a cluster: ``python -m fnmesh.platform.cluster.gateway``.

Routes come from the cluster (``RouteSource``: each revision's Service is its endpoint),
replicas are reached over mTLS with the gateway's component certificate, and a revision
without a ready replica goes through the activator (``RemoteAdmission``). (On one machine
the gateway also sends a revision short of burst capacity through the activator, by the
autoscaler's decision; here that decision lives in another process, so it does not.)

Start: configuration, the store, the certificate, the routes (first sync), the listener.
Stop (SIGTERM): the listener drains, then admission, routes, certificate, store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from fnmesh.activator import Refused
from fnmesh.platform.cluster.admission import RemoteAdmission
from fnmesh.platform.cluster.certificates import ComponentIdentity
from fnmesh.platform.cluster.endpoints import RouteSource
from fnmesh.platform.cluster.process import EXIT_START, listen, refuse, run
from fnmesh.platform.cluster.service_hosts import ServiceHosts
from fnmesh.platform.cluster.settings import GATEWAY_PORT, ClusterSettings
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.mesh.identity import IdentityRefused, component_identity
from fnmesh.platform.model.errors import ValidationError
from fnmesh.platform.store import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

log = logging.getLogger("fnmesh.cluster.gateway")
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


async def serve(settings: ClusterSettings, stop: asyncio.Event) -> int:
    try:
        client = KubeClient.from_environment(timeout=settings.request_timeout)
    except StoreError as error:
        return refuse("gateway", error, EXIT_START)
    store = ClusterStore(
        client,
        split_api_version=settings.split_api_version,
        platform_namespace=settings.platform_namespace,
        namespaces=settings.watch_namespaces,
    )
    me = ComponentIdentity("gateway", settings)
    routes = RouteTable(RouteSource(store, ServiceHosts(settings.service_hosts)))
    try:
        if not await me.obtain(stop):
            return 0
        tls = me.client.client_context()
        admission = RemoteAdmission(
            settings.addresses.activator_url,
            tls=tls,
            server_identity=component_identity("activator", settings.trust_domain),
            routes=routes,
            timeout_of=lambda ns, fn: r.timeout if (r := routes.get(ns, fn)) else 30.0,
        )
        gateway = Gateway(
            routes,
            domain=settings.gateway_domain,
            max_body_bytes=MAX_BODY_BYTES,
            upstream_timeout=UPSTREAM_TIMEOUT,
            tls=tls,
            admission=admission,
            refused=Refused,
        )
        routes.start()
        if not await synced(routes, stop):
            if stop.is_set():
                return 0
            return refuse("gateway", "the routes could not be read from the cluster", EXIT_START)
        try:
            sock = listen(settings.listen_host, settings.listen_port)
        except OSError as error:
            return refuse("gateway", error, EXIT_START)
        await gateway.start(settings.listen_host, 0, sock=sock)
        log.info("gateway on %s:%d", settings.listen_host, settings.listen_port)
        await stop.wait()
        await gateway.close(DRAIN_TIMEOUT)
        await admission.close()
        return 0
    except IdentityRefused as error:
        return refuse("gateway", f"the identity endpoint refused: {error}", EXIT_START)
    finally:
        await routes.close()
        await me.close()
        store.close()


def main() -> int:
    try:
        settings = ClusterSettings.from_env(os.environ, port=GATEWAY_PORT)
    except ValidationError as error:
        return refuse("gateway", error)
    return run(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    sys.exit(main())
