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
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.cli.options import UpOptions
from fnmesh.platform.cluster.api import ClusterApi
from fnmesh.platform.cluster.settings import ApiSettings, ClusterSettings, Reader
from fnmesh.platform.shell import CannotStart, Shell, admin_token, run, write_context
from fnmesh.platform.store import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

NAME = "fn up"
DEFAULT_GATEWAY_PORT = 8080
CONTEXT_FILE = "context.json"


class ExampleNeedsEmbedded(ValueError):
    """``--example`` deploys through the embedded platform only."""


def settings_for(options: UpOptions, env: Mapping[str, str]) -> ApiSettings:
    """The API's settings from ``fn up``'s options; ValidationError for a bad variable."""
    if options.example:
        raise ExampleNeedsEmbedded(
            "--example needs the embedded backend; deploy it with "
            "'fn deploy functions/examples/NAME' through the chart's API"
        )
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


def token_name(home: Path) -> str:
    """The name of this home's token in the cluster (one per home)."""
    return "cli-" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


async def serve(shell: Shell, options: UpOptions, settings: ApiSettings) -> None:
    home = options.home
    shell.hold_home(home)
    client = KubeClient.from_environment(timeout=settings.cluster.request_timeout)
    api = ClusterApi(settings, client, identity=False, artifacts=False)
    shell.on_stop("API", api.stop)
    try:
        name = token_name(home)
        context_file = home / CONTEXT_FILE
        token = await asyncio.to_thread(admin_token, Tokens(api.store), context_file, name)
        sock = shell.listen(settings.cluster.listen_host, settings.cluster.listen_port)
        await api.start(sock)
    except (OSError, StoreError) as error:
        raise CannotStart(f"cannot serve the cluster's API: {error}") from None
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
    write_context(context_file, context)
    print(f"fnmesh API for the cluster is up (home {home})", flush=True)
    print(f"  API      {context['api']}  (resources in the kubeconfig's cluster)", flush=True)
    print(f"  gateway  {context['gateway']}  (port-forward the chart's gateway here)", flush=True)
    await shell.wait()
    print("fnmesh is stopping...", flush=True)


def run_up(options: UpOptions) -> int:
    """``fn up --backend kubernetes``; the exit status."""
    return run(
        NAME,
        lambda: settings_for(options, os.environ),
        lambda shell, settings: serve(shell, options, settings),
        start_errors=(OSError, StoreError),
    )
