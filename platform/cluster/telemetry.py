"""The telemetry hub on a cluster: ``python -m fnmesh.platform.cluster.telemetry``.

One mTLS listener (``FNMESH_LISTEN_PORT``, 8091) with the hub's own identity
(``telemetry.fnmesh-system...``), the address replica proxies are given as their stats
URL. It takes every proxy's report a second (``POST /v1/stats``), relays the load in
them to the autoscaler (``RemoteDemand``: the hub's ``LoadSink``, batched), keeps the
per-revision outcome windows, and serves the read API (``telemetry.reads``: golden
metrics and tap sessions) to the API and the operator only. It reads nothing from the
Kubernetes API, so its account has no role at all.

Start: configuration, the certificate, the listener, the relay.
Stop (SIGTERM): the listener, tap sessions, the relay, the certificate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from fnmesh.platform.cluster.certificates import ComponentIdentity
from fnmesh.platform.cluster.demand import RemoteDemand
from fnmesh.platform.cluster.settings import TELEMETRY_PORT, ClusterSettings
from fnmesh.platform.http import serve as serve_http
from fnmesh.platform.mesh.identity import IdentityRefused, component_identity
from fnmesh.platform.shell import EXIT_START, listen, refuse, run
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.reads import ReadHandler
from fnmesh.platform.telemetry.server import StatsHandler

log = logging.getLogger("fnmesh.cluster.telemetry")
NAME = "telemetry"
READERS = ("api", "operator")  # the components that may read golden metrics and tap


async def serve(settings: ClusterSettings, stop: asyncio.Event) -> int:
    me = ComponentIdentity("telemetry", settings)
    try:
        if not await me.obtain(stop):
            return 0
        domain = settings.trust_domain
        relay = RemoteDemand(
            settings.addresses.autoscaler_url,
            tls=me.client.client_context(),
            server_identity=component_identity("autoscaler", domain),
        )
        hub = TelemetryHub(load=relay)
        readers = frozenset(component_identity(name, domain) for name in READERS)
        reads = ReadHandler(hub, readers)
        try:
            sock = listen(settings.listen_host, settings.listen_port)
        except OSError as error:
            return refuse(NAME, error, EXIT_START)
        server = await serve_http(
            StatsHandler(hub, reads=reads),
            settings.listen_host,
            0,
            ssl=me.client.server_context(),
            sock=sock,
        )
        relay.start()
        reads.start()
        log.info("telemetry hub on %s:%d (mTLS)", settings.listen_host, settings.listen_port)
        await stop.wait()
        await server.close(1.0)
        await reads.close()
        await relay.close()
        return 0
    except IdentityRefused as error:
        return refuse(NAME, f"the identity endpoint refused: {error}", EXIT_START)
    finally:
        await me.close()


def main() -> int:
    return run(
        NAME,
        lambda: ClusterSettings.from_env(os.environ, port=TELEMETRY_PORT),
        lambda shell, settings: serve(settings, shell.stopping),
    )


if __name__ == "__main__":
    sys.exit(main())
