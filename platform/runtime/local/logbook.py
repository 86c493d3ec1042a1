"""Replica output, one file per function: ``<logs>/<namespace>/<function>.log``.

Each line is ``<UTC time> <replica> <stream>: <text>``. A file over ``max_bytes`` is
rotated to ``.1`` (one generation kept). Readers tail the file and can follow it.
A line that cannot be written (a full disk) is dropped and counted in ``dropped``: the
replica whose output it was keeps running.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path


def _stamp() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class LogBook:
    def __init__(
        self, root: Path, *, max_bytes: int = 10 * 1024 * 1024, stamp: Callable[[], str] = _stamp
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._stamp = stamp
        self._changed: dict[Path, asyncio.Event] = {}
        self.dropped = 0

    def path(self, namespace: str, function: str) -> Path:
        return self.root / namespace / f"{function}.log"

    def write(self, namespace: str, function: str, replica: str, stream: str, text: str) -> None:
        path = self.path(namespace, function)
        line = f"{self._stamp()} {replica} {stream}: {text.rstrip()}\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                if path.stat().st_size + len(line) > self.max_bytes:
                    path.replace(path.with_suffix(".log.1"))
            except FileNotFoundError:
                pass
            with path.open("a", encoding="utf-8", errors="replace") as out:
                out.write(line)
        except OSError:
            self.dropped += 1
            return
        event = self._changed.pop(path, None)
        if event is not None:
            event.set()

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
