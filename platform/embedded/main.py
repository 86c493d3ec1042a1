"""``fn up``: the whole platform in one process, wired into the entry-point shell.

The shell (``fnmesh.platform.shell``) loads the configuration once (exit 2 naming every
bad field), sets up logging, the loop and the signals, and runs the stop steps. This
module only wires, in this order: the home's lock, the store and secrets, the background
tasks, the builder, the mesh (identity, stats, policy), the log book, the runtime, the
listeners (bound before anything serves), the gateway's routes (first sync), the
replicas' supervisor, the autoscaler, the activator, the controller, the gateway, the
API, the admin token and CLI context; then, if asked, the example function.

Stop (SIGINT/SIGTERM) runs the steps registered as each part started, last-started
first: the API stops accepting, the gateway drains, the controller, activator and
autoscaler stop, replicas are drained and stopped, routes stop following, cgroups are
removed, the log book, the mesh and the background tasks close, the store closes and
the home's lock is let go. A step that fails is logged and the next one still runs, so
replicas are stopped whatever happened -- also when the start failed half way.

Every background loop (controller, revision reconcilers, autoscaler, activator reports,
gateway routes, policy writer) runs on one ``TaskBoard``: restarted with backoff after
any exception, and reported by ``/healthz`` while failing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

import fnmesh.functions
from fnmesh.activator import Activator
from fnmesh.autoscaler.driver import Autoscaler
from fnmesh.platform.api import ApiDeps, build_app
from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.build import Builder, BuildLimits, SandboxSettings, pack
from fnmesh.platform.cli.options import UpOptions
from fnmesh.platform.controller import Controller
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.deploy.service import new_build_id
from fnmesh.platform.embedded.config import PlatformConfig, load
from fnmesh.platform.embedded.mesh import EmbeddedMesh, RouteDestinations
from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.private import PrivateAccess
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.http import ServerLimits
from fnmesh.platform.http.memory import give_back
from fnmesh.platform.model import Function
from fnmesh.platform.model.resources import condition
from fnmesh.platform.runtime.local import LocalRuntime, LogBook
from fnmesh.platform.runtime.local.outputrate import OutputLimits
from fnmesh.platform.runtime.local.process import set_output_limits
from fnmesh.platform.runtime.local.sandboxing import RUNTIME_PACKAGES, Sandboxing
from fnmesh.platform.sandbox.cgroups import detect
from fnmesh.platform.sandbox.host import read_host, unavailable
from fnmesh.platform.sandbox.uids import UidBook
from fnmesh.platform.shell import Shell, admin_token, url, write_context
from fnmesh.platform.shell import run as run_shell
from fnmesh.platform.store import SqliteReads, SqliteSecrets, SqliteStore
from fnmesh.platform.store.sealing import Sealer
from fnmesh.platform.supervise import TaskBoard
from fnmesh.platform.telemetry.hub import TelemetryHub

log = logging.getLogger("fnmesh")
EXAMPLES = Path(fnmesh.functions.__file__).resolve().parent / "examples"
NAME = "fn up"
ADMIN_TOKEN = "admin"


def function_url(base: str, namespace: str, name: str) -> str:
    return f"{base}/fn/{name}/" if namespace == "default" else f"{base}/fn/{name}.{namespace}/"


class SandboxUnavailable(Exception):
    """Replicas cannot be sandboxed here and running them unconfined was not asked for."""


# How often the platform returns freed C heap to the system: a long-running process that
# deploys, restarts and reroutes frees much more than it keeps, and glibc holds freed
# pages in the middle of its heap (bench/soak.py measures what this keeps off the RSS).
GIVE_BACK_EVERY = 30.0


async def _give_back_memory() -> None:
    while True:
        await asyncio.sleep(GIVE_BACK_EVERY)
        give_back()


class EmbeddedPlatform:
    def __init__(self, config: PlatformConfig, shell: Shell) -> None:
        self.config = config
        self.shell = shell
        self.api_url = ""
        self.gateway_url = ""

    async def start(self) -> None:
        """Start every part, registering how it stops as it starts (see the module)."""
        cfg = self.config
        stop = self.shell.on_stop
        self.shell.hold_home(cfg.home)
        self.tasks = TaskBoard()
        sandboxing = self.sandboxing = self._sandboxing()
        self.store = SqliteStore(cfg.state_db)
        stop("store", self.store.close)
        self.secrets = SqliteSecrets(cfg.state_db, Sealer.from_key_file(cfg.secrets_key_file))
        stop("secrets", self.secrets.close)
        stop("background tasks", self.tasks.close)
        self.tasks.start("memory give-back", _give_back_memory)
        self._forget_replicas()
        limits = BuildLimits(
            max_bundle_bytes=cfg.build.max_bundle_bytes,
            max_unpacked_bytes=cfg.build.max_unpacked_bytes,
            max_files=cfg.build.max_files,
        )
        sandbox = SandboxSettings(
            timeout_seconds=cfg.build.timeout_seconds,
            allow_index_options=cfg.build.allow_index_options,
        )
        self.builder = Builder(cfg.build_root, limits=limits, sandbox=sandbox)
        self.deploy = DeployService(
            self.store, self.builder, limits, self.secrets, resources=cfg.resources
        )
        # the platform's own metrics (cold starts, scale events, the gateway's requests,
        # dropped replica output), served at GET /metrics on the API port
        self.metrics = CollectorRegistry()
        set_output_limits(
            OutputLimits(
                lines_per_second=cfg.runtime.log_lines_per_second,
                bytes_per_second=cfg.runtime.log_bytes_per_second,
            )
        )
        self.telemetry = TelemetryHub()
        self.mesh = EmbeddedMesh(
            cfg.home, cfg.listen.host, self.store, self.telemetry, tasks=self.tasks
        )
        mesh_settings = await self.mesh.start()
        stop("mesh", self.mesh.close)
        self.logbook = LogBook(
            cfg.logs_dir, max_bytes=cfg.runtime.log_max_bytes, registry=self.metrics
        )
        stop("log book", self.logbook.close)
        stop("cgroups", self._remove_cgroups)
        self.runtime = LocalRuntime(
            cfg.runtime,
            self.store,
            cfg.build_root,
            self.logbook,
            host=cfg.listen.host,
            mesh=mesh_settings,
            registry=self.metrics,
            sandboxing=sandboxing,
            secrets=self.secrets,
            tasks=self.tasks,
        )
        gateway_sock = self.shell.listen(cfg.listen.host, cfg.listen.gateway_port)
        api_sock = self.shell.listen(cfg.listen.host, cfg.listen.api_port)
        self.gateway_url = url(cfg.listen.host, gateway_sock.getsockname()[1])
        self.api_url = url(cfg.listen.host, api_sock.getsockname()[1])
        # the gateway reads the store through a connection of its own, off its loop
        reads = SqliteReads(self.store)
        stop("gateway's store reader", reads.close)
        self.routes = RouteTable(reads, tasks=self.tasks)
        self.autoscaler = Autoscaler(
            self.runtime, self.runtime.ready_count, cfg.autoscaler, tasks=self.tasks
        )
        self.telemetry.load = self.autoscaler
        self.activator = Activator(
            self.routes, self.autoscaler, cfg.activator, tasks=self.tasks, burst=self.autoscaler
        )
        self.autoscaler.waiting = self.activator.held  # never give up on a revision with waiters
        self.routes.listen(self.activator.refresh)
        self.mesh.control.destinations = RouteDestinations(self.routes, self.activator)
        self.controller = Controller(
            self.store,
            self.runtime,
            self.autoscaler,
            url_for=lambda ns, name: function_url(self.gateway_url, ns, name),
            metrics=self.telemetry,
            tasks=self.tasks,
        )
        self.tokens = Tokens(self.store)
        self.gateway = Gateway(
            self.routes,
            domain=cfg.gateway.domain,
            max_body_bytes=cfg.gateway.max_body_bytes,
            upstream_timeout=cfg.gateway.upstream_timeout,
            tls=self.mesh.gateway.client_context(),
            admission=self.activator,
            registry=self.metrics,
            private=PrivateAccess(self.tokens),
            limits=ServerLimits(
                max_connections=cfg.gateway.max_connections,
                request_timeout=cfg.gateway.request_timeout,
                max_buffered_bytes=cfg.gateway.max_buffered_bytes,
            ),
        )
        token = admin_token(self.tokens, cfg.context_file, ADMIN_TOKEN)
        self.routes.start()
        stop("routes", self.routes.close)
        await self.routes.synced.wait()
        self.runtime.start()
        stop("replicas", self.runtime.close)
        self.autoscaler.start()
        stop("autoscaler", self.autoscaler.close)
        self.activator.start()
        stop("activator", self.activator.close)
        self.controller.start()
        stop("controller", self.controller.close)
        await self.gateway.start(cfg.listen.host, 0, sock=gateway_sock)
        stop("gateway", lambda: self.gateway.close(cfg.runtime.stop_timeout))
        app = build_app(
            ApiDeps(
                store=self.store,
                tokens=self.tokens,
                deploy=self.deploy,
                builder=self.builder,
                logbook=self.logbook,
                max_bundle_bytes=cfg.build.max_bundle_bytes,
                telemetry=self.telemetry,
                metrics=self.metrics,
                secrets=self.secrets,
                resources=cfg.resources,
                tasks=self.tasks,
            )
        )
        await self.shell.serve_asgi("API", app, api_sock)
        write_context(
            cfg.context_file,
            {
                "api": self.api_url,
                "gateway": self.gateway_url,
                "token": token,
                "domain": cfg.gateway.domain,
                "pid": os.getpid(),
            },
        )

    def _forget_replicas(self) -> None:
        """Replicas from an earlier run are gone: clear their addresses before routing."""
        for item in self.store.list("Revision")[0]:
            status = item.get("status") or {}
            if status.get("replicas") or status.get("readyReplicas"):
                status.update(replicas=[], readyReplicas=0)
                self.store.update_status(item)

    def _sandboxing(self) -> Sandboxing | None:
        """How replicas are contained; refuses to go on unconfined unless told to."""
        cfg = self.config
        if not cfg.runtime.sandbox:
            log.warning("replicas run UNSANDBOXED: function code can read the platform's keys")
            return None
        reason = unavailable()
        if reason is not None:
            raise SandboxUnavailable(
                f"replicas cannot be sandboxed on this host: {reason}; start with "
                "--unsafe-no-sandbox (or runtime.sandbox: false) to run them unconfined"
            )
        host = read_host(cfg.home, RUNTIME_PACKAGES)
        uids = UidBook(cfg.home / "sandbox" / "uids.json")
        # one cgroup parent per home: a start sweeps what an earlier run of it left
        digest = hashlib.sha256(str(cfg.home.resolve()).encode()).hexdigest()[:12]
        cgroups = detect(parent=f"fnmesh-{digest}")
        if cgroups is None:
            log.warning("no writable cgroups: replicas run without memory, cpu or pids limits")
        else:
            left = cgroups.sweep()
            if left:
                log.warning("stopped what an earlier run left: %s", ", ".join(left))
        return Sandboxing(
            host,
            uids,
            scratch_bytes=cfg.runtime.scratch_bytes,
            cgroups=cgroups,
            policy=cfg.resources,
        )

    async def _remove_cgroups(self) -> None:
        if self.sandboxing is not None and self.sandboxing.cgroups is not None:
            await asyncio.to_thread(self.sandboxing.cgroups.sweep, remove_parent=True)

    async def deploy_example(self, name: str) -> str:
        folder = EXAMPLES / name
        if not (folder / "fn.yaml").exists():
            known = ", ".join(sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
            raise ValueError(f"no example named {name!r}; examples: {known}")
        bundle = pack(folder)
        manifest = self.deploy.prepare("default", None, bundle)
        result = await self.deploy.deploy(manifest, bundle, build_id=new_build_id())
        return await self.wait_ready(manifest.namespace, manifest.name, result.generation)

    async def wait_ready(
        self, namespace: str, name: str, generation: int, timeout: float = 60.0
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            function = Function.from_dict(self.store.get("Function", namespace, name))
            status = function.status
            ready = condition(status.conditions, "Ready")
            if (
                (status.observed_generation or 0) >= generation
                and status.latest_ready_revision
                and status.latest_ready_revision == status.latest_created_revision
            ):
                return status.url or ""
            if ready is not None and ready.status == "False" and ready.reason == "RevisionFailed":
                raise RuntimeError(ready.message or "the revision failed")
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{namespace}/{name} was not ready within {timeout:g}s")


def load_config(options: UpOptions, env: dict[str, str]) -> PlatformConfig:
    """The configuration ``fn up`` runs with: the home's, the environment's, the flags'."""
    overrides: dict[str, Any] = {}
    if options.api_port is not None:
        overrides["listen.api_port"] = options.api_port
    if options.gateway_port is not None:
        overrides["listen.gateway_port"] = options.gateway_port
    if options.host is not None:
        overrides["listen.host"] = options.host
    if options.unsafe_no_sandbox:
        overrides["runtime.sandbox"] = False
    return load(options.home, overrides=overrides, env=env)


async def serve(shell: Shell, config: PlatformConfig, example: str | None = None) -> None:
    """Start the platform, say where it is, deploy ``example`` if asked, run until stopped."""
    platform = EmbeddedPlatform(config, shell)
    await platform.start()
    print(f"fnmesh is up (home {config.home})", flush=True)
    print(f"  API      {platform.api_url}", flush=True)
    print(
        f"  gateway  {platform.gateway_url}  (functions at /fn/<name>/ or "
        f"<name>.<namespace>.{config.gateway.domain})",
        flush=True,
    )
    print(f"  context  {config.context_file}", flush=True)
    if config.runtime.sandbox:
        print("  replicas sandboxed: a uid per function, own namespaces, limits", flush=True)
    else:
        print(
            "  replicas UNSANDBOXED (--unsafe-no-sandbox): function code runs as this user"
            " and can read the platform's keys and tokens",
            file=sys.stderr,
            flush=True,
        )
    if example:
        try:
            address = await platform.deploy_example(example)
            print(f"example {example!r} deployed: {address}", flush=True)
        except Exception as error:  # the platform keeps running; the user sees why
            print(
                f"fn up: deploying example {example!r} failed: {error}",
                file=sys.stderr,
                flush=True,
            )
    await shell.wait()
    print("fnmesh is stopping...", flush=True)


def run(options: UpOptions) -> int:
    """``fn up``; the exit status (0 stopped, 1 could not start, 2 bad configuration)."""
    return run_shell(
        NAME,
        lambda: load_config(options, dict(os.environ)),
        lambda shell, config: serve(shell, config, options.example),
        start_errors=(SandboxUnavailable, OSError),
    )
