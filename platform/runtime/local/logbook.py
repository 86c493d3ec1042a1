"""Replica output, one file per function: ``<logs>/<namespace>/<function>.log``.

Each line is ``<UTC time> <replica> <stream>: <text>``. A file over ``max_bytes`` is
rotated to ``.1`` (one generation kept). Readers tail the file and can follow it.

Writing never blocks the caller and never raises: ``write`` appends the line to a buffer
of at most ``max_pending_bytes`` (a line that does not fit is dropped and counted as
``backlog``), and one task hands the buffered lines, a batch per file, to a thread of
its own that appends them. A write that fails (a full disk: ``ENOSPC``) drops its batch,
counted as ``error``, and is logged once per run of failures. Without a running event
loop (a plain script), ``write`` appends at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import CollectorRegistry

from fnmesh.platform.runtime.local import logdrops
from fnmesh.platform.runtime.local.logdrops import DROPS, LogDrops

log = logging.getLogger("fnmesh.runtime")

Writer = Callable[[Path, bytes], None]  # append these bytes to that file


def _stamp() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class Appender:
    """The default writer: append to a file, rotating it to ``.1`` first when the batch
    would take it over ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def __call__(self, path: Path, data: bytes) -> None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            size = 0
        if size and size + len(data) > self.max_bytes:
            path.replace(path.with_suffix(".log.1"))
        with path.open("ab") as out:
            out.write(data)


class LogBook:
    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        stamp: Callable[[], str] = _stamp,
        max_pending_bytes: int = 1024 * 1024,
        writer: Writer | None = None,
        drops: LogDrops = DROPS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_pending_bytes = max_pending_bytes
        self.drops = drops
        self._stamp = stamp
        self._writer: Writer = writer or Appender(max_bytes)
        self._changed: dict[Path, asyncio.Event] = {}
        self._pending: dict[Path, list[str]] = {}
        self._pending_bytes = 0
        self._flushing: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._failing = False
        if registry is not None:
            logdrops.register(registry, drops)

    def path(self, namespace: str, function: str) -> Path:
        return self.root / namespace / f"{function}.log"

    @property
    def pending_bytes(self) -> int:
        """Bytes taken by ``write`` and not yet handed to the writer."""
        return self._pending_bytes

    def write(self, namespace: str, function: str, replica: str, stream: str, text: str) -> None:
        path = self.path(namespace, function)
        line = f"{self._stamp()} {replica} {stream}: {text.rstrip()}\n"
        size = len(line)
        if self._pending_bytes + size > self.max_pending_bytes:
            self.drops.add("backlog", 1, size)
            return
        self._pending.setdefault(path, []).append(line)
        self._pending_bytes += size
        if self._flushing is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._write_now()
                return
            self._flushing = loop.create_task(self._flush())

    async def flush(self) -> None:
        """Until what was written so far has been handed to the writer (and written)."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def close(self) -> None:
        await self.flush()
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._take()
                if self._thread is None:
                    self._thread = ThreadPoolExecutor(1, thread_name_prefix="fnmesh-logbook")
                written = await loop.run_in_executor(self._thread, self._append, batch)
                for path in written:
                    event = self._changed.pop(path, None)
                    if event is not None:
                        event.set()
        finally:
            self._flushing = None

    def _take(self) -> dict[Path, list[str]]:
        batch, self._pending, self._pending_bytes = self._pending, {}, 0
        return batch

    def _write_now(self) -> None:
        for path in self._append(self._take()):
            event = self._changed.pop(path, None)
            if event is not None:
                event.set()

    def _append(self, batch: dict[Path, list[str]]) -> list[Path]:
        """Append each file's lines; the files written. Runs on the writer's thread."""
        written = []
        for path, lines in batch.items():
            data = "".join(lines).encode("utf-8", "replace")
            try:
                self._writer(path, data)
            except Exception as error:  # OSError mostly (ENOSPC); whatever it is, drop
                self.drops.add("error", len(lines), len(data))
                if not self._failing:
                    self._failing = True
                    log.warning("replica output is being dropped: cannot write %s: %s", path, error)
                continue
            if self._failing:
                self._failing = False
                log.warning("replica output is written again (to %s)", path)
            written.append(path)
        return written

    def tail(self, namespace: str, function: str, lines: int) -> list[str]:
        path = self.path(namespace, function)
        if not path.exists():
            return []
        with path.open("rb") as source:
            source.seek(0, 2)
            size = source.tell()
            block = min(size, max(4096, lines * 200))
            while True:
                source.seek(size - block)
                data = source.read(block)
                found = data.splitlines()
                if len(found) > lines or block == size:
                    break
                block = min(size, block * 2)
        text = [line.decode("utf-8", "replace") for line in found]
        if block < size:
            text = text[1:]  # the first line may be cut
        return text[-lines:] if lines else []

    async def follow(self, namespace: str, function: str, lines: int) -> AsyncIterator[str]:
        """The last ``lines`` lines, then every new line as it is written."""
        path = self.path(namespace, function)
        for line in self.tail(namespace, function, lines):
            yield line
        offset = path.stat().st_size if path.exists() else 0
        pending: bytes = b""
        while True:
            event = self._changed.setdefault(path, asyncio.Event())
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size < offset:  # rotated
                offset = 0
            if size > offset:
                with path.open("rb") as source:
                    source.seek(offset)
                    data = pending + source.read(size - offset)
                offset = size
                *complete, pending = data.split(b"\n")
                for raw in complete:
                    yield raw.decode("utf-8", "replace")
                continue
            await event.wait()
