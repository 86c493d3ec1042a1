"""``fn up``: the whole platform in one process, started and stopped in fixed steps.

Start: configuration (validated once), the home's lock, the store, the admin token and
CLI context, the builder, the runtime, the controller, the gateway's routes and
listener, the API listener; then, if asked, the example function.
Stop (SIGINT/SIGTERM), in reverse: the API stops accepting, the gateway drains, the
controller stops, replicas are drained and stopped, the store is closed. A step that
fails is logged and the next one still runs, so replicas are stopped whatever happened.

Every background loop (controller, revision reconcilers, autoscaler, activator reports,
gateway routes, policy writer) runs on one ``TaskBoard``: restarted with backoff after
any exception, and reported by ``/healthz`` while failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import uvicorn
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
from fnmesh.platform.embedded.config import ConfigError, PlatformConfig, load
from fnmesh.platform.embedded.mesh import EmbeddedMesh, RouteDestinations
from fnmesh.platform.gateway import Gateway
from fnmesh.platform.gateway.private import PrivateAccess
from fnmesh.platform.gateway.table import RouteTable
from fnmesh.platform.http import ServerLimits
from fnmesh.platform.model import Function
from fnmesh.platform.model.resources import condition
from fnmesh.platform.runtime.local import LocalRuntime, LogBook
from fnmesh.platform.runtime.local.outputrate import OutputLimits
from fnmesh.platform.runtime.local.process import set_output_limits
from fnmesh.platform.runtime.local.sandboxing import RUNTIME_PACKAGES, Sandboxing
from fnmesh.platform.sandbox.cgroups import detect
from fnmesh.platform.sandbox.host import read_host, unavailable
from fnmesh.platform.sandbox.uids import UidBook
from fnmesh.platform.store import SqliteSecrets, SqliteStore
from fnmesh.platform.store.sealing import Sealer
from fnmesh.platform.supervise import TaskBoard
from fnmesh.platform.telemetry.hub import TelemetryHub

log = logging.getLogger("fnmesh")
EXAMPLES = Path(fnmesh.functions.__file__).resolve().parent / "examples"


def function_url(base: str, namespace: str, name: str) -> str:
    return f"{base}/fn/{name}/" if namespace == "default" else f"{base}/fn/{name}.{namespace}/"


class HomeLocked(Exception):
    pass


def lock_home(home: Path) -> IO[str]:
    handle = (home / "platform.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        raise HomeLocked(
            f"a platform is already running in {home} (pid {holder}): stop it, or "
            "use another --home"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {error.strerror}; choose another port "
            "(0 picks a free one)"
        ) from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class SandboxUnavailable(Exception):
    """Replicas cannot be sandboxed here and running them unconfined was not asked for."""


class EmbeddedPlatform:
    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.api_url = ""
        self.gateway_url = ""

    async def start(self) -> None:
        cfg = self.config
        cfg.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg.home.chmod(0o700)  # an older or hand-made home may be open to other users
        self._lock = lock_home(cfg.home)
        self.tasks = TaskBoard()
        sandboxing = self.sandboxing = self._sandboxing()
        self.store = SqliteStore(cfg.state_db)
        self.secrets = SqliteSecrets(cfg.state_db, Sealer.from_key_file(cfg.secrets_key_file))
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
        self.logbook = LogBook(
            cfg.logs_dir, max_bytes=cfg.runtime.log_max_bytes, registry=self.metrics
        )
        self.telemetry = TelemetryHub()
        self.mesh = EmbeddedMesh(
            cfg.home, cfg.listen.host, self.store, self.telemetry, tasks=self.tasks
        )
        mesh_settings = await self.mesh.start()
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
        gateway_sock = listen(cfg.listen.host, cfg.listen.gateway_port)
        api_sock = listen(cfg.listen.host, cfg.listen.api_port)
        self.gateway_url = _url(cfg.listen.host, gateway_sock.getsockname()[1])
        self.api_url = _url(cfg.listen.host, api_sock.getsockname()[1])
        self.routes = RouteTable(self.store, tasks=self.tasks)
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
        token = self._admin_token()
        self.routes.start()
        await self.routes.synced.wait()
        self.runtime.start()
        self.autoscaler.start()
        self.activator.start()
        self.controller.start()
        await self.gateway.start(cfg.listen.host, 0, sock=gateway_sock)
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
        self.uvicorn = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        )
        # fn up owns SIGINT/SIGTERM and stops the components in order
        self.uvicorn.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._api_task = asyncio.create_task(self.uvicorn.serve(sockets=[api_sock]))
        while not self.uvicorn.started:
            if self._api_task.done():
                self._api_task.result()
            await asyncio.sleep(0.01)
        self._write_context(token)

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

    def _admin_token(self) -> str:
        context = self.config.context_file
        if context.exists():
            with contextlib.suppress(ValueError, OSError):
                token = json.loads(context.read_text()).get("token")
                grant = self.tokens.verify(token) if isinstance(token, str) else None
                if grant is not None and grant.role == "admin" and grant.namespace is None:
                    return str(token)  # still the admin token of every namespace
        return self.tokens.mint("admin")

    def _write_context(self, token: str) -> None:
        body = {
            "api": self.api_url,
            "gateway": self.gateway_url,
            "token": token,
            "domain": self.config.gateway.domain,
            "pid": os.getpid(),
        }
        path = self.config.context_file
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(body, out, indent=2)
        tmp.replace(path)

    async def stop(self) -> None:
        self.uvicorn.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._api_task, 5)
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("gateway", lambda: self.gateway.close(self.config.runtime.stop_timeout)),
            ("controller", self.controller.close),
            ("activator", self.activator.close),
            ("autoscaler", self.autoscaler.close),
            ("routes", self.routes.close),
            ("replicas", self.runtime.close),
            ("cgroups", self._remove_cgroups),
            ("log book", self.logbook.close),
            ("mesh", self.mesh.close),
            ("background tasks", self.tasks.close),
        ]
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("stopping the %s failed; stopping the rest", what)
        for closing in (self.secrets.close, self.store.close):
            try:
                closing()
            except Exception:
                log.exception("closing the store failed")
        self._lock.close()

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


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _serve(options: UpOptions) -> int:
    overrides: dict[str, Any] = {}
    if options.api_port is not None:
        overrides["listen.api_port"] = options.api_port
    if options.gateway_port is not None:
        overrides["listen.gateway_port"] = options.gateway_port
    if options.host is not None:
        overrides["listen.host"] = options.host
    if options.unsafe_no_sandbox:
        overrides["runtime.sandbox"] = False
    try:
        config = load(options.home, overrides=overrides, env=os.environ)
    except ConfigError as error:
        print(f"fn up: {error}", file=sys.stderr)
        return 2
    platform = EmbeddedPlatform(config)
    try:
        await platform.start()
    except (HomeLocked, SandboxUnavailable, OSError) as error:
        print(f"fn up: {error}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
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
    code = 0
    if options.example:
        try:
            url = await platform.deploy_example(options.example)
            print(f"example {options.example!r} deployed: {url}", flush=True)
        except Exception as error:  # the platform keeps running; the user sees why
            print(
                f"fn up: deploying example {options.example!r} failed: {error}",
                file=sys.stderr,
                flush=True,
            )
    await stop.wait()
    print("fnmesh is stopping...", flush=True)
    await platform.stop()
    return code


def run(options: UpOptions) -> int:
    logging.basicConfig(
        level=os.environ.get("FNMESH_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(_serve(options))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_serve(options))
