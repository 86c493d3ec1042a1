"""A runtime process and its pipes: output pumps, and the ready pipe it announces on.

Shared by fresh launches and the warm pool: ``spawn`` starts ``python -m <module>`` with
a ready pipe and captured stdout/stderr; ``Output`` forwards each line to whoever owns the
process now (a pooled process has no replica until it is specialized); ``read_line``
waits for the next announcement on the ready pipe or for the process to exit.

Output is function code's, so it is hostile. The pumps read it in chunks of at most
``READ_CHUNK`` bytes and never stop reading (a replica never blocks on a full pipe);
``Output`` takes whole lines within the replica's ``OutputLimits`` (lines and bytes per
second), cuts lines over ``max_line_bytes``, and counts the rest as dropped, writing one
line that says how many once the rate allows. A chunk arriving while the budget is spent
costs a ``count`` of its newlines, nothing per line. A consumer that fails loses the line
(counted), never the pump.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fnmesh.platform.runtime.local.logdrops import DROPS, LogDrops
from fnmesh.platform.runtime.local.outputrate import OutputLimits, OutputRate

log = logging.getLogger("fnmesh.runtime")
OutputSink = Callable[[str, str, str], None]  # (replica name, stream, line)
READ_CHUNK = 64 * 1024  # the most read from a replica's pipe at once
NOTICE_STREAM = "fnmesh"  # the stream name of the platform's own lines in a replica's log

_limits = OutputLimits()


def set_output_limits(limits: OutputLimits) -> None:
    """The limits of every ``Output`` made from now on without limits of its own."""
    global _limits
    _limits = limits


def _configured_limits() -> OutputLimits:
    return _limits


@dataclass(slots=True)
class Output:
    name: str
    sink: OutputSink | None = None
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    limits: OutputLimits = field(default_factory=_configured_limits)
    drops: LogDrops = DROPS
    clock: Callable[[], float] = time.monotonic
    dropped_lines: int = 0  # dropped since the last notice
    dropped_bytes: int = 0
    _rate: OutputRate = field(init=False)
    _partial: dict[str, bytes] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._rate = OutputRate(self.limits)

    def write(self, stream: str, line: str) -> None:
        """Hand one line to the owner of the process (no rate applies)."""
        self.recent.append(line)
        if self.sink is not None:
            try:
                self.sink(self.name, stream, line)
            except Exception:  # the consumer's failure must not stop the pump
                self.drops.add("error", 1, len(line))

    def feed(self, stream: str, data: bytes) -> None:
        """Take ``data`` read from ``stream``: whole lines within the rate; a partial last
        line waits for the rest (a line that grows past ``max_line_bytes`` is cut)."""
        pending = self._partial.pop(stream, b"")
        if pending:
            data = pending + data
        now = self.clock()
        rate = self._rate
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if len(rest) > self.limits.max_line_bytes:
            cut, rest = len(data), b""  # emitted (cut short) as a line of its own
        if rest:
            self._partial[stream] = rest
        if not cut:
            return
        if rate.empty(now):  # the budget is spent: count, do not split
            whole = data[:cut]
            newlines = whole.count(b"\n")
            self._dropped(newlines + (whole[-1:] != b"\n"), cut - newlines)
            return
        lines = data[:cut].split(b"\n")
        if not lines[-1]:
            lines.pop()
        self._notice(now)
        taken = rate.take(now, lines)
        limit = self.limits.max_line_bytes
        for line in lines[:taken]:
            if len(line) > limit:
                line = line[:limit] + b" [cut: the line was longer than %d bytes]" % limit
            self.write(stream, line.decode("utf-8", "replace"))
        if taken < len(lines):
            rest_lines = lines[taken:]
            self._dropped(len(rest_lines), sum(map(len, rest_lines)))

    def close(self, stream: str) -> None:
        """``stream`` ended: its partial line goes out, and so does any drop notice."""
        rest = self._partial.pop(stream, b"")
        if rest:
            self.feed(stream, rest + b"\n")
        if self.dropped_lines:
            self.write(NOTICE_STREAM, self._notice_text())
            self.dropped_lines = self.dropped_bytes = 0

    def _dropped(self, lines: int, size: int) -> None:
        self.dropped_lines += lines
        self.dropped_bytes += size
        self.drops.add("rate", lines, size)

    def _notice(self, now: float) -> None:
        """Say how much was dropped, once the rate allows one more line."""
        if not self.dropped_lines:
            return
        text = self._notice_text()
        if self._rate.take(now, (text.encode(),)):
            self.write(NOTICE_STREAM, text)
            self.dropped_lines = self.dropped_bytes = 0

    def _notice_text(self) -> str:
        limits = self.limits
        return (
            f"{self.dropped_lines} lines ({self.dropped_bytes} bytes) of output dropped: "
            f"over the limit of {limits.lines_per_second} lines or "
            f"{limits.bytes_per_second} bytes per second"
        )


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
    """Read ``stream`` to its end in bounded chunks, whatever ``output`` makes of them."""
    failed = False
    try:
        while True:
            data = await stream.read(READ_CHUNK)
            if not data:
                return
            if failed:
                output.drops.add("error", data.count(b"\n"), len(data))
                continue
            try:
                output.feed(name, data)
            except Exception:  # keep draining: a replica must never block on its pipe
                log.exception("replica %s: cannot take its %s; dropping it", output.name, name)
                failed = True
    finally:
        with contextlib.suppress(Exception):
            output.close(name)


def base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE")
    return {key: os.environ[key] for key in keep if key in os.environ} | {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
