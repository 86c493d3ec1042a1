"""The replica proxy process: wiring only.

``main`` reads the configuration, gets the first certificate, starts ``ReplicaProxy``,
reports ``ready <inbound_port> <admin_port>`` on ``--ready-fd``, waits for SIGTERM (or
SIGINT) and shuts down in fixed steps: drain the inbound side (see ``inbound.drain``:
stop accepting, finish in-flight requests up to the drain timeout), send the last stats
report, close the admin endpoint and the upstream pool, exit 0.

Exit status: 0 after a graceful stop, 1 when a port cannot be bound, 2 for bad
configuration, 5 when the identity service refuses the bootstrap credential.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from fnmesh.platform.mesh.identity.client import IdentityClient
from fnmesh.platform.mesh.identity.endpoint import HttpIdentityEndpoint
from fnmesh.platform.mesh.identity.errors import IdentityError, IdentityRefused
from fnmesh.platform.mesh.proxy.config import ProxyConfig
from fnmesh.platform.mesh.proxy.replica import ReplicaProxy
from fnmesh.platform.model.errors import ValidationError
from fnmesh.platform.sandbox.syscalls import die_with_parent

log = logging.getLogger("fnmesh.mesh.proxy")

EXIT_BIND = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 5


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fnmesh.platform.mesh.proxy",
        description="The replica proxy: mTLS, authorization, limits, metrics and tap in front"
        " of one function runtime. Configured by FNMESH_PROXY_* environment variables.",
    )
    parser.add_argument(
        "--ready-fd", type=int, default=None,
        help="write 'ready <inbound_port> <admin_port>' to this file descriptor",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    die_with_parent()  # a proxy never outlives the platform (or pod shell) that started it
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = ProxyConfig.from_env(os.environ)
    except ValidationError as error:
        print(f"fnmesh-proxy: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(run(config, args.ready_fd))
    return uvloop.run(run(config, args.ready_fd))


async def run(config: ProxyConfig, ready_fd: int | None) -> int:
    """Serve until SIGTERM/SIGINT; the exit status (see the module docstring)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    endpoint = HttpIdentityEndpoint(
        config.identity.service_url, server_identity=config.identity.service_identity
    )
    identity = IdentityClient(
        config.identity.name,
        trust_anchors_pem=config.identity.trust_anchors_pem,
        endpoint=endpoint,
        credential=config.identity.credential,
    )
    try:
        if not await _first_certificate(identity, stop):
            return 0
    except IdentityRefused as error:
        log.error("the identity service refused %s: %s", config.identity.name, error.reason)
        return EXIT_REFUSED
    proxy = ReplicaProxy(config, identity)
    try:
        await proxy.start()
    except OSError as error:
        log.error("cannot listen: %s", error)
        return EXIT_BIND
    log.info(
        "serving %s/%s (%s) as %s: inbound mTLS on %s:%d -> %s, admin on %s:%d",
        config.labels.namespace,
        config.labels.function,
        config.labels.revision,
        config.identity.name,
        config.listen.inbound.host,
        proxy.inbound_port,
        config.upstream,
        config.listen.admin.host,
        proxy.admin_port,
    )
    if ready_fd is not None:
        _announce(ready_fd, proxy.inbound_port, proxy.admin_port)
    await stop.wait()
    log.info("stopping: draining for up to %gs", config.limits.drain_timeout)
    await proxy.stop()
    await identity.close()
    await endpoint.close()
    log.info("stopped")
    return 0


async def _first_certificate(identity: IdentityClient, stop: asyncio.Event) -> bool:
    """Get the first certificate, retrying while the service is unreachable; False if stopped."""
    delay = 0.1
    while not stop.is_set():
        try:
            await identity.start()
        except IdentityRefused:
            raise
        except (IdentityError, OSError) as error:
            log.warning("no certificate yet (retrying in %.1fs): %s", delay, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(5.0, delay * 2)
        else:
            return True
    return False


def _announce(fd: int, inbound_port: int, admin_port: int) -> None:
    try:
        os.write(fd, f"ready {inbound_port} {admin_port}\n".encode())
    finally:
        os.close(fd)
