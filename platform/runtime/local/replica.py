"""One replica: a function runtime process, from launch to exit.

The runtime is started with an inherited pipe (``--ready-fd``) on which it writes
``ready <port>`` once it listens and its init hook has run; the port is chosen by the
runtime itself (port 0), so launches never race for ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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


class ReplicaFailed(Exception):
    """The replica exited (or never became ready); ``str`` says why, with its last output."""


OutputSink = Callable[[str, str, str], None]  # (replica name, stream, line)


class Replica:
    def __init__(self, spec: LaunchSpec, sink: OutputSink, *, host: str = "127.0.0.1") -> None:
        self.spec = spec
        self.name = f"{spec.revision}-{secrets.token_hex(3)}"
        self.host = host
        self.port: int | None = None
        self.ready = False
        self.stopping = False
        self.started_at = time.time()
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._sink = sink
        self._recent: deque[str] = deque(maxlen=20)
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def address(self) -> str | None:
        return f"{self.host}:{self.port}" if self.port else None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def start(self, ready_timeout: float) -> None:
        """Launch and wait until ready; raise ReplicaFailed when it cannot get there."""
        read_fd, write_fd = os.pipe()
        spec = self.spec
        argv = [
            sys.executable,
            "-m",
            "fnmesh.functions",
            "--source",
            str(spec.source_dir),
            "--handler",
            spec.handler,
            "--host",
            self.host,
            "--port",
            "0",
            "--ready-fd",
            str(write_fd),
            "--concurrency",
            str(spec.concurrency),
        ]
        for site in spec.sites:
            argv += ["--site", str(site)]
        env = {
            **_base_env(),
            **spec.env,
            "FNMESH_NAMESPACE": spec.namespace,
            "FNMESH_FUNCTION": spec.function,
            "FNMESH_REVISION": spec.revision,
            "FNMESH_REPLICA": self.name,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
                env=env,
                cwd=spec.source_dir,
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump(self.process.stdout, "stdout")),
            asyncio.create_task(self._pump(self.process.stderr, "stderr")),
        ]
        line = await self._read_ready(read_fd, ready_timeout)
        parts = line.split()
        if len(parts) != 2 or parts[0] != "ready" or not parts[1].isdigit():
            await self.kill()
            raise ReplicaFailed(f"replica {self.name} sent {line!r} instead of 'ready <port>'")
        self.port = int(parts[1])
        self.ready = True

    async def _read_ready(self, read_fd: int, timeout: float) -> str:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        assert self.process is not None
        ready = asyncio.ensure_future(reader.readline())
        exited = asyncio.ensure_future(self.process.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            transport.close()
        if ready in done and ready.result():
            exited.cancel()
            return ready.result().decode("ascii", "replace").strip()
        ready.cancel()
        if exited in done:
            await asyncio.gather(*self._pumps, return_exceptions=True)
            raise ReplicaFailed(self.exit_reason(exited.result()))
        exited.cancel()
        await self.kill()
        raise ReplicaFailed(f"replica {self.name} was not ready within {timeout:g}s")

    def exit_reason(self, code: int) -> str:
        what = EXIT_REASONS.get(code, f"exited with status {code}")
        if code < 0:
            with contextlib.suppress(ValueError):
                what = f"was killed by {signal.Signals(-code).name}"
        tail = "\n".join(self._recent)
        return f"replica {self.name} {what}" + (f":\n{tail}" if tail else "")

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the reader's limit
                line = await stream.read(65536)
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\n")
            self._recent.append(text)
            self._sink(self.name, name, text)

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        return code

    async def stop(self, timeout: float) -> None:
        """SIGTERM (the runtime drains in-flight requests), then SIGKILL after ``timeout``."""
        self.stopping = True
        self.ready = False
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            await self.kill()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def kill(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE")
    return {key: os.environ[key] for key in keep if key in os.environ}
