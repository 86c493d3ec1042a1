"""One replica: a function runtime process and, in front of it, its proxy.

Each process starts from a warm one when its pool has one and fresh otherwise; either
way it is told what to become on its stdin. The runtime writes ``ready <port>`` on an
inherited pipe once it listens and its init hook has run.

With a mesh, the runtime listens on a Unix socket in the replica's own folder
(``<sockets>/r-<id>/sock/runtime.sock``, mode 0600: only the platform's proxy can open
it) and, when sandboxed, runs as its function's uid in namespaces of its own, seeing
that folder (and its proxy's egress socket in it) as ``/run/fnmesh``. Then the proxy
starts with that socket as its upstream, gets its certificate and writes
``ready <inbound> <admin>``; the replica's address is the proxy's mTLS listener. Without
a mesh, the runtime listens on a loopback port it picks itself. Stopping goes the other
way: the proxy drains first, then the runtime, then the replica's folder is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fnmesh.platform.http import ConnectionPool, Request, UpstreamError
from fnmesh.platform.model.resources import ResourcesSpec
from fnmesh.platform.runtime.local.mesh import (
    PROXY_EXIT_REASONS,
    MeshSettings,
    proxy_env,
    replica_identity,
)
from fnmesh.platform.runtime.local.pool import RUNTIME_POOL, WARM_TIMEOUT, WarmPool
from fnmesh.platform.runtime.local.process import Output, OutputSink, Process, base_env, spawn
from fnmesh.platform.runtime.local.sandboxing import Sandboxing
from fnmesh.platform.sandbox.cgroups import CgroupError, Group
from fnmesh.platform.sandbox.layout import EGRESS_SOCKET

log = logging.getLogger("fnmesh.runtime")
EXIT_REASONS = {
    3: "the handler module failed to import",
    4: "the init hook failed",
    6: "its sandbox could not be built",
}


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """What a replica of one revision needs to start."""

    namespace: str
    function: str
    revision: str
    source_dir: Path
    handler: str
    sites: tuple[Path, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secretEnv values
    concurrency: int = 0
    drain_timeout: float = 30.0
    timeout: float = 30.0
    service_account: str | None = None
    # secret name -> key -> value, to become /var/run/secrets/fnmesh/<name>/<key>
    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict, repr=False)
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)  # defaults fill in


class ReplicaFailed(Exception):
    """The replica exited (or never became ready); ``str`` says why, with its last output."""


class Replica:
    def __init__(
        self,
        spec: LaunchSpec,
        sink: OutputSink,
        *,
        host: str = "127.0.0.1",
        socket_dir: Path | None = None,
        sandboxing: Sandboxing | None = None,
    ) -> None:
        self.spec = spec
        token = secrets.token_hex(3)
        self.name = f"{spec.revision}-{token}"
        self.sandboxing = sandboxing
        # the replica's own folder (with a mesh only); short: Unix socket paths cap at 107
        self.folder = socket_dir / f"r-{token}" if socket_dir else None
        sockets = self.folder / "sock" if self.folder else None
        # where the proxy reaches the runtime, and the runtime calls other functions
        self.runtime_socket = sockets / "runtime.sock" if sockets else None
        self.egress_socket = sockets / "egress.sock" if sockets else None
        self.uid: int | None = None  # the sandboxed runtime's uid
        self.recycled: str | None = None  # why the platform stopped it (a failed probe)
        self.group: Group | None = None  # the runtime's cgroup (sandboxed, with cgroups)
        self._token = token
        self.host = host
        self.port: int | None = None
        self.ready = False
        self.stopping = False
        self.started_at = time.time()  # shown in status; durations use ``began``
        self.began = time.monotonic()
        self.cold_start: float | None = None  # seconds from launch to ready
        self.warm = False  # started from the warm pool
        self.proc: Process | None = None
        self.proxy: Process | None = None
        self.admin_port: int | None = None
        self._output = Output(self.name, sink)
        self._proxy_output = Output(self.name, _labelled(sink, "proxy"))

    @property
    def address(self) -> str | None:
        return f"{self.host}:{self.port}" if self.port else None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _env(self) -> dict[str, str]:
        spec = self.spec
        egress = EGRESS_SOCKET if self.sandboxing else str(self.egress_socket)
        return {
            **spec.env,
            "FNMESH_NAMESPACE": spec.namespace,
            "FNMESH_FUNCTION": spec.function,
            "FNMESH_REVISION": spec.revision,
            "FNMESH_REPLICA": self.name,
        } | ({"FNMESH_OUTBOUND": egress} if self.egress_socket else {})

    @property
    def metrics_url(self) -> str | None:
        return f"http://{self.host}:{self.admin_port}/metrics" if self.admin_port else None

    async def start(
        self,
        ready_timeout: float,
        pool: WarmPool | None = None,
        *,
        mesh: MeshSettings | None = None,
        proxy_pool: WarmPool | None = None,
        launched: Callable[[], None] | None = None,
    ) -> None:
        """Launch and wait until ready; raise ReplicaFailed when it cannot get there.

        ``launched`` is called once the runtime process has its work, while it loads the
        function: bookkeeping done then runs beside the cold start instead of before it.
        The pools are refilled when the start is over, not while it competes for CPU.
        """
        began = time.monotonic()
        try:
            await self._start_runtime(ready_timeout, pool, launched)
            if mesh is not None:
                await self._start_proxy(ready_timeout, mesh, proxy_pool)
        finally:
            for used in (pool, proxy_pool):
                if used is not None:
                    used.refill()
        self.cold_start = time.monotonic() - began
        self.ready = True

    async def _start_runtime(
        self, ready_timeout: float, pool: WarmPool | None, launched: Callable[[], None] | None
    ) -> None:
        warm = pool.take() if pool is not None else None
        if warm is not None:
            self.warm = True
        else:
            warm = await self._spawn()
        if self.sandboxing is not None:
            try:
                # before it forks: what it starts from now on is in the group too
                self.group = self.sandboxing.group_for(
                    f"r-{self._token}", self.spec.resources, warm.pid
                )
            except (CgroupError, OSError) as error:
                await warm.kill()
                raise ReplicaFailed(
                    f"replica {self.name}: cannot apply its limits: {error}"
                ) from None
        await self._specialize(warm)
        if launched is not None:
            launched()
        proc = self.proc
        assert proc is not None
        try:
            line = await proc.read_line(ready_timeout)
        except TimeoutError:
            await self.kill()
            raise ReplicaFailed(
                f"replica {self.name} was not ready within {ready_timeout:g}s"
            ) from None
        if line is None:
            code = proc.process.returncode
            raise ReplicaFailed(self.exit_reason(code if code is not None else -1))
        parts = line.split()
        if len(parts) != 2 or parts[0] != "ready" or not parts[1].isdigit():
            await self.kill()
            raise ReplicaFailed(f"replica {self.name} sent {line!r} instead of 'ready <port>'")
        proc.close_ready()
        self.port = int(parts[1])

    async def _start_proxy(
        self, ready_timeout: float, mesh: MeshSettings, pool: WarmPool | None
    ) -> None:
        spec = self.spec
        identity = replica_identity(
            spec.namespace, spec.function, spec.service_account, mesh.trust_domain
        )
        env = proxy_env(
            mesh,
            namespace=spec.namespace,
            function=spec.function,
            revision=spec.revision,
            replica=self.name,
            identity=identity,
            upstream=(
                f"unix:{self.runtime_socket}" if self.runtime_socket else f"{self.host}:{self.port}"
            ),
            host=self.host,
            concurrency=spec.concurrency,
            timeout=spec.timeout,
            drain_timeout=spec.drain_timeout,
            egress_socket=self.egress_socket,
            egress_owner=self.uid,
        )
        warm = pool.take() if pool is not None else None
        if warm is not None:
            warm.output.name, warm.output.sink = self.name, self._proxy_output.sink
            warm.output.recent.clear()
            self._proxy_output = warm.output
            await _send(warm, {"env": env})
            self.proxy = warm
        else:
            self.proxy = await spawn(
                "fnmesh.platform.mesh.proxy", [], {**base_env(), **env}, output=self._proxy_output
            )
        try:
            line = await self.proxy.read_line(ready_timeout)
        except TimeoutError:
            await self.kill()
            raise ReplicaFailed(
                f"the proxy of replica {self.name} was not ready within {ready_timeout:g}s"
            ) from None
        parts = (line or "").split()
        if len(parts) != 3 or parts[0] != "ready":
            code = self.proxy.process.returncode
            await self.kill()
            what = PROXY_EXIT_REASONS.get(code or 0, f"its proxy exited with status {code}")
            tail = "\n".join(self._proxy_output.recent)
            raise ReplicaFailed(f"replica {self.name}: {what}" + (f":\n{tail}" if tail else ""))
        self.proxy.close_ready()
        self.port, self.admin_port = int(parts[1]), int(parts[2])

    async def _specialize(self, warm: Process) -> None:
        warm.output.name, warm.output.sink = self.name, self._output.sink
        warm.output.recent.clear()
        self._output = warm.output
        self.proc = warm
        spec = self.spec
        extra: dict[str, object] = {}
        if self.folder is not None and self.runtime_socket is not None:
            for folder in (self.folder, self.runtime_socket.parent, self.folder / "root"):
                folder.mkdir(mode=0o755, exist_ok=True)
            extra["socket"] = str(self.runtime_socket)
        if self.sandboxing is not None and self.runtime_socket is not None:
            layout = self.sandboxing.layout_for(
                namespace=spec.namespace,
                function=spec.function,
                replica=self.name,
                source=spec.source_dir,
                sites=spec.sites,
                sockets=self.runtime_socket.parent,
                root=self.folder / "root" if self.folder else Path("/nonexistent"),
                secrets=spec.secrets,
            )
            self.uid = layout.uid
            extra["sandbox"] = layout.to_json()
        message = extra | {
            "source": str(spec.source_dir),
            "handler": spec.handler,
            "sites": [str(s) for s in spec.sites],
            "env": self._env(),
            "concurrency": spec.concurrency,
            "host": self.host,
            "port": 0,
            "drainTimeout": spec.drain_timeout,
            "stuckAfter": spec.timeout,
        }
        await _send(warm, message)

    async def _spawn(self) -> Process:
        """A runtime started now (the pool had none), waiting to be specialized."""
        process = await spawn(RUNTIME_POOL, [], base_env(), stdin=True, output=self._output)
        try:
            line = await process.read_line(WARM_TIMEOUT)
        except TimeoutError:
            line = "timed out"
        if line != "warm":
            await process.kill()
            tail = "\n".join(self._output.recent)
            raise ReplicaFailed(f"replica {self.name}: the runtime did not start: {line}\n{tail}")
        return process

    async def probe(self, pool: ConnectionPool, timeout: float) -> str | None:
        """Ask the runtime whether it can still serve; None when it can, else why not."""
        if self.runtime_socket is None:
            return None
        request = Request("GET", b"/_fnmesh/health", [])
        try:
            response = await pool.request(str(self.runtime_socket), 0, request, timeout=timeout)
        except UpstreamError as error:
            return f"its health check failed: {error}"
        if response.status != 200:
            return response.body.decode("utf-8", "replace")[:200] or f"status {response.status}"
        return None

    def exit_reason(self, code: int) -> str:
        if self.recycled is not None:
            return f"replica {self.name} was recycled: {self.recycled}"
        if self.group is not None and self.group.oom_killed():
            return (
                f"replica {self.name} was OOMKilled: it used more memory than its limit "
                "(raise resources.memory in fn.yaml, or use less)"
            )
        what = EXIT_REASONS.get(code, f"exited with status {code}")
        if code < 0:
            with contextlib.suppress(ValueError):
                what = f"was killed by {signal.Signals(-code).name}"
        tail = "\n".join(self._output.recent)
        return f"replica {self.name} {what}" + (f":\n{tail}" if tail else "")

    async def wait(self) -> int:
        """Until the runtime or the proxy exits (the other is then stopped); its status."""
        assert self.proc is not None
        waits = {asyncio.ensure_future(self.proc.wait())}
        if self.proxy is not None:
            waits.add(asyncio.ensure_future(self.proxy.wait()))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        code = next(iter(done)).result()
        if pending and not self.stopping:
            await self.kill()
        for task in pending:
            task.cancel()
        return code

    async def stop(self, timeout: float) -> None:
        """SIGTERM to the proxy (it drains in-flight requests), then to the runtime; SIGKILL
        for whatever is still running after ``timeout``."""
        self.stopping = True
        self.ready = False
        for proc in (self.proxy, self.proc):
            if proc is None or proc.process.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                await proc.kill()

    async def kill(self) -> None:
        for proc in (self.proxy, self.proc):
            if proc is not None:
                await proc.kill()

    async def clean(self) -> None:
        """Once its processes are gone: kill whatever is left in its cgroup, remove the
        cgroup and the replica's folder."""
        if self.group is not None:
            try:
                await asyncio.to_thread(self.group.remove)
            except (CgroupError, OSError) as error:
                log.warning("replica %s: cannot remove its cgroup: %s", self.name, error)
            self.group = None
        if self.folder is not None:
            await asyncio.to_thread(shutil.rmtree, self.folder, True)


async def _send(warm: Process, message: dict[str, object]) -> None:
    """Tell a warm process what to become (one JSON line on its stdin)."""
    stdin = warm.process.stdin
    assert stdin is not None
    stdin.write(json.dumps(message).encode() + b"\n")
    with contextlib.suppress(ConnectionError):
        await stdin.drain()
    stdin.close()


def _labelled(sink: OutputSink, stream: str) -> OutputSink:
    def write(name: str, _: str, line: str) -> None:
        sink(name, stream, line)

    return write
