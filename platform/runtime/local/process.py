"""A runtime process and its pipes: output pumps, and the ready pipe it announces on.

Shared by fresh launches and the warm pool: ``spawn`` starts ``python -m <module>`` with
a ready pipe and captured stdout/stderr; ``Output`` forwards each line to whoever owns the
process now (a pooled process has no replica until it is specialized); ``read_line``
waits for the next announcement on the ready pipe or for the process to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

OutputSink = Callable[[str, str, str], None]  # (replica name, stream, line)


@dataclass(slots=True)
class Output:
    name: str
    sink: OutputSink | None = None
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def write(self, stream: str, line: str) -> None:
        self.recent.append(line)
        if self.sink is not None:
            self.sink(self.name, stream, line)


@dataclass(slots=True)
class Process:
    process: asyncio.subprocess.Process
    ready: asyncio.StreamReader
    output: Output
    pumps: list[asyncio.Task[None]]
    _transport: asyncio.BaseTransport

    @property
    def pid(self) -> int:
        return self.process.pid

    async def read_line(self, timeout: float) -> str | None:
        """The next line on the ready pipe; None if the process exited first.

        Raises TimeoutError after ``timeout`` seconds.
        """
        line = asyncio.ensure_future(self.ready.readline())
        exited = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait(
            {line, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if line in done and line.result():
            exited.cancel()
            return line.result().decode("ascii", "replace").strip()
        line.cancel()
        if line in done and exited not in done:  # the pipe closed: the exit is near
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), timeout)
        if exited.done():
            await asyncio.gather(*self.pumps, return_exceptions=True)
            return None
        exited.cancel()
        raise TimeoutError

    def close_ready(self) -> None:
        self._transport.close()

    async def wait(self) -> int:
        code = await self.process.wait()
        await asyncio.gather(*self.pumps, return_exceptions=True)
        self.close_ready()
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        await self.wait()


async def spawn(
    module: str,
    args: list[str],
    env: dict[str, str],
    *,
    cwd: str | None = None,
    stdin: bool = False,
    output: Output,
) -> Process:
    read_fd, write_fd = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            "--ready-fd",
            str(write_fd),
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=(write_fd,),
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
    )
    assert process.stdout is not None and process.stderr is not None
    pumps = [
        asyncio.create_task(_pump(process.stdout, "stdout", output)),
        asyncio.create_task(_pump(process.stderr, "stderr", output)),
    ]
    return Process(process, reader, output, pumps, transport)


async def _pump(stream: asyncio.StreamReader, name: str, output: Output) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than the reader's limit
            line = await stream.read(65536)
        if not line:
            return
        output.write(name, line.decode("utf-8", "replace").rstrip("\n"))


def base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE")
    return {key: os.environ[key] for key in keep if key in os.environ} | {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
