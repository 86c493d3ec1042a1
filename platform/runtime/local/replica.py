"""One replica: a function runtime process, from launch to exit.

A replica starts from a warm process when the pool has one (it is told which function
to become on its stdin) and from a fresh ``python -m fnmesh.functions`` otherwise.
Either way the runtime writes ``ready <port>`` on an inherited pipe once it listens and
its init hook has run; it picks the port itself (port 0), so launches never race for
ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from fnmesh.platform.runtime.local.pool import WarmPool
from fnmesh.platform.runtime.local.process import Output, OutputSink, Process, base_env, spawn

EXIT_REASONS = {3: "the handler module failed to import", 4: "the init hook failed"}


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """What a replica of one revision needs to start."""

    namespace: str
    function: str
    revision: str
    source_dir: Path
    handler: str
    sites: tuple[Path, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    concurrency: int = 0
    drain_timeout: float = 30.0


class ReplicaFailed(Exception):
    """The replica exited (or never became ready); ``str`` says why, with its last output."""


class Replica:
    def __init__(self, spec: LaunchSpec, sink: OutputSink, *, host: str = "127.0.0.1") -> None:
        self.spec = spec
        self.name = f"{spec.revision}-{secrets.token_hex(3)}"
        self.host = host
        self.port: int | None = None
        self.ready = False
        self.stopping = False
        self.started_at = time.time()
        self.cold_start: float | None = None  # seconds from launch to ready
        self.warm = False  # started from the warm pool
        self.proc: Process | None = None
        self._output = Output(self.name, sink)

    @property
    def address(self) -> str | None:
        return f"{self.host}:{self.port}" if self.port else None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _env(self) -> dict[str, str]:
        spec = self.spec
        return {
            **spec.env,
            "FNMESH_NAMESPACE": spec.namespace,
            "FNMESH_FUNCTION": spec.function,
            "FNMESH_REVISION": spec.revision,
            "FNMESH_REPLICA": self.name,
        }

    async def start(self, ready_timeout: float, pool: WarmPool | None = None) -> None:
        """Launch and wait until ready; raise ReplicaFailed when it cannot get there."""
        began = time.monotonic()
        warm = pool.take() if pool is not None else None
        if warm is not None:
            await self._specialize(warm)
        else:
            self.proc = await self._spawn()
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
        self.cold_start = time.monotonic() - began
        self.ready = True

    async def _specialize(self, warm: Process) -> None:
        warm.output.name, warm.output.sink = self.name, self._output.sink
        warm.output.recent.clear()
        self._output = warm.output
        self.proc = warm
        self.warm = True
        spec = self.spec
        message = {
            "source": str(spec.source_dir),
            "handler": spec.handler,
            "sites": [str(s) for s in spec.sites],
            "env": self._env(),
            "concurrency": spec.concurrency,
            "host": self.host,
            "port": 0,
            "drainTimeout": spec.drain_timeout,
        }
        stdin = warm.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(message).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await stdin.drain()
        stdin.close()

    async def _spawn(self) -> Process:
        spec = self.spec
        args = [
            "--source",
            str(spec.source_dir),
            "--handler",
            spec.handler,
            "--host",
            self.host,
            "--port",
            "0",
            "--concurrency",
            str(spec.concurrency),
            "--drain-timeout",
            str(spec.drain_timeout),
        ]
        for site in spec.sites:
            args += ["--site", str(site)]
        return await spawn(
            "fnmesh.functions",
            args,
            {**base_env(), **self._env()},
            cwd=str(spec.source_dir),
            output=self._output,
        )

    def exit_reason(self, code: int) -> str:
        what = EXIT_REASONS.get(code, f"exited with status {code}")
        if code < 0:
            with contextlib.suppress(ValueError):
                what = f"was killed by {signal.Signals(-code).name}"
        tail = "\n".join(self._output.recent)
        return f"replica {self.name} {what}" + (f":\n{tail}" if tail else "")

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self, timeout: float) -> None:
        """SIGTERM (the runtime drains in-flight requests), then SIGKILL after ``timeout``."""
        self.stopping = True
        self.ready = False
        proc = self.proc
        if proc is None or proc.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if self.proc is not None:
            await self.proc.kill()
