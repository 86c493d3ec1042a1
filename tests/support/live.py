"""A command left running, its output read in a thread so a test can wait on it."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable


class Live:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def _collect(self) -> None:
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def until(
        self,
        what: str,
        done: Callable[[list[str]], bool],
        meanwhile: Callable[[], None],
        timeout: float = 20.0,
    ) -> list[str]:
        """Call ``meanwhile`` (say, send a request) until the output satisfies ``done``;
        AssertionError when the command exits first or at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            self._collect()
            if done(self.lines):
                return self.lines
            if self.process.poll() is not None:
                self._reader.join(2)
                self._collect()
                output = "\n".join(self.lines)
                raise AssertionError(f"exited {self.process.returncode}: {output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.lines}")
            meanwhile()

    def stop(self) -> int:
        """Ctrl-C, as a person would stop it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
