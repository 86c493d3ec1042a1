"""The build log: every line goes to ``<logs>/<build_id>.log`` and, as it happens, to a sink.

Lines are plain text without timestamps, the same in the file and the sink. The file is
flushed after every line so readers can follow it while the build runs.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

LogSink = Callable[[str], Awaitable[None]]

_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_build_id(build_id: str) -> str:
    """``build_id`` when it is usable as a file name; raises ValueError otherwise."""
    if not _BUILD_ID.fullmatch(build_id):
        raise ValueError(
            f"build id {build_id!r} must be 1-128 letters, digits, '.', '_' or '-' and start "
            "with a letter or digit"
        )
    return build_id


class BuildLog:
    def __init__(self, path: Path, sink: LogSink | None = None, *, tail_lines: int = 20) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("w", encoding="utf-8", errors="replace")
        self._sink = sink
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)

    async def line(self, text: str) -> None:
        """Write one line (a multi-line text becomes several lines)."""
        for line in text.splitlines() or [""]:
            self.record(line)
            if self._sink is not None:
                await self._sink(line)

    def record(self, line: str) -> None:
        """Write to the file only: for the last words of a build that is being torn down."""
        self._file.write(line.rstrip() + "\n")
        self._file.flush()
        self.tail.append(line)

    def close(self) -> None:
        self._file.close()
