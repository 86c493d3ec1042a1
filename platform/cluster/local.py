"""``fn up --backend kubernetes``: the API on this machine, its resources in a cluster.

The cluster is the current kubeconfig context (``KUBECONFIG`` or ``~/.kube/config``) with
the chart's CRDs installed; the chart's namespace is ``FNMESH_PLATFORM_NAMESPACE``
(default ``fnmesh-system``). The process serves the same REST API as the chart's API pod,
so every ``fn`` command works unchanged against the cluster's Functions, Revisions and
TrafficSplits, and writes ``<home>/context.json`` like ``fn up`` does: its token is a
Token object in the cluster (so it works with the chart's API too), the gateway is
``http://127.0.0.1:<--gateway-port, 8080>`` (``kubectl port-forward`` to the chart's
gateway).

What stays on this machine: builds. Their artifacts live under ``<home>/kubernetes``,
out of the replicas' reach; deploy source through the chart's API (port-forward it)
to run it on the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import IO

from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.cli.options import UpOptions
from fnmesh.platform.cluster.api import ClusterApi
from fnmesh.platform.cluster.process import EXIT_CONFIG, EXIT_START, listen, refuse, run
from fnmesh.platform.cluster.settings import ApiSettings, ClusterSettings, Reader
from fnmesh.platform.store import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

DEFAULT_GATEWAY_PORT = 8080
CONTEXT_FILE = "context.json"


def settings_for(options: UpOptions, env: dict[str, str]) -> ApiSettings:
    """The API's settings from ``fn up``'s options; ValidationError for a bad variable."""
    read = Reader(env)
    namespace = read.name("PLATFORM_NAMESPACE", "fnmesh-system", "namespace")
    split = read.text("SPLIT_API_VERSION", "split.smi-spec.io/v1alpha4")
    read.problems.raise_if_any("the environment")
    cluster = ClusterSettings(
        platform_namespace=namespace,
        split_api_version=split,
        listen_host=options.host or "127.0.0.1",
        listen_port=8081 if options.api_port is None else options.api_port,
    )
    return ApiSettings(cluster=cluster, data_dir=options.home / "kubernetes")


def lock(home: Path) -> IO[str]:
    """Hold ``<home>/platform.lock`` (the one ``fn up`` holds); OSError when taken."""
    handle = (home / "platform.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OSError(
            f"a platform is already running in {home}: stop it, or use another --home"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def token_name(home: Path) -> str:
    """The name of this home's token in the cluster (one per home)."""
    return "cli-" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def cli_token(tokens: Tokens, home: Path) -> str:
    """The context's token while the cluster still knows it, else a new one."""
    with contextlib.suppress(ValueError, OSError):
        token = json.loads((home / CONTEXT_FILE).read_text()).get("token")
        if isinstance(token, str) and tokens.verify(token):
            return token
    return tokens.mint(token_name(home))


def write_context(home: Path, body: dict[str, object]) -> None:
    path = home / CONTEXT_FILE
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(body, out, indent=2)
    partial.replace(path)


async def serve(options: UpOptions, settings: ApiSettings, stop: asyncio.Event) -> int:
    home = options.home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        held = lock(home)
    except OSError as error:
        return refuse("up", error, EXIT_START)
    try:
        client = KubeClient.from_environment(timeout=settings.cluster.request_timeout)
    except StoreError as error:
        held.close()
        return refuse("up", error, EXIT_START)
    api = ClusterApi(settings, client, identity=False, artifacts=False)
    try:
        token = await asyncio.to_thread(cli_token, Tokens(api.store), home)
        sock = listen(settings.cluster.listen_host, settings.cluster.listen_port)
        await api.start(sock)
    except (OSError, StoreError) as error:
        await api.stop()
        held.close()
        return refuse("up", f"cannot serve the cluster's API: {error}", EXIT_START)
    host, port = sock.getsockname()[:2]
    gateway_port = options.gateway_port or DEFAULT_GATEWAY_PORT
    context = {
        "api": f"http://{host}:{port}",
        "gateway": f"http://127.0.0.1:{gateway_port}",
        "token": token,
        "domain": settings.cluster.gateway_domain,
        "pid": os.getpid(),
        "backend": "kubernetes",
    }
    write_context(home, context)
    print(f"fnmesh API for the cluster is up (home {home})", flush=True)
    print(f"  API      {context['api']}  (resources in the kubeconfig's cluster)", flush=True)
    print(f"  gateway  {context['gateway']}  (port-forward the chart's gateway here)", flush=True)
    await stop.wait()
    print("fnmesh is stopping...", flush=True)
    await api.stop()
    held.close()
    return 0


def run_up(options: UpOptions) -> int:
    """``fn up --backend kubernetes``; the exit status."""
    try:
        settings = settings_for(options, dict(os.environ))
    except ValueError as error:
        return refuse("up", error, EXIT_CONFIG)
    if options.example:
        print(
            "fn up: --example needs the embedded backend; deploy it with "
            "'fn deploy functions/examples/NAME' through the chart's API",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return run(lambda stop: serve(options, settings, stop))
