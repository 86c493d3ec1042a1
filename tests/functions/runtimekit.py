"""Helpers for the runtime tests: the runtime as a real process, and HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "functions" / "examples"
DEADLINE = 20.0  # seconds a runtime may take to get ready on a slow, busy machine


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class Runtime:
    """``python -m fnmesh.functions`` started with a ready pipe; output kept line by line."""

    def __init__(self, source: Path, handler: str, *extra: str) -> None:
        read_fd, write_fd = os.pipe()
        argv = [sys.executable, "-m", "fnmesh.functions", "--source", str(source)]
        argv += ["--handler", handler, "--ready-fd", str(write_fd), *extra]
        self.process = subprocess.Popen(
            argv, pass_fds=(write_fd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, cwd=source,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},  # keep example folders clean
        )  # fmt: skip
        os.close(write_fd)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._pumps = [
            threading.Thread(
                target=self._pump, args=(self.process.stdout, self.stdout), daemon=True
            ),
            threading.Thread(
                target=self._pump, args=(self.process.stderr, self.stderr), daemon=True
            ),
        ]
        for pump in self._pumps:
            pump.start()
        self.port = self._wait_ready(read_fd)

    @staticmethod
    def _pump(stream: Any, lines: list[str]) -> None:
        for raw in stream:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _wait_ready(self, read_fd: int) -> int | None:
        """The port from ``ready <port>``, or None when the process closed the pipe."""
        try:
            data = b""
            deadline = time.monotonic() + DEADLINE
            while not data.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"runtime not ready within {DEADLINE}s: {self.output()}")
                readable, _, _ = select.select([read_fd], [], [], left)
                if readable:
                    chunk = os.read(read_fd, 100)
                    if not chunk:
                        return None
                    data += chunk
        finally:
            os.close(read_fd)
        word, port = data.decode().split()
        assert word == "ready"
        return int(port)

    def wait(self, timeout: float = DEADLINE) -> int:
        code = self.process.wait(timeout)
        for pump in self._pumps:
            pump.join(timeout)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def output(self) -> str:
        return "\n".join(["stdout:", *self.stdout, "stderr:", *self.stderr])

    def wait_for_line(self, stream: list[str], text: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not any(text in line for line in stream):
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r} within {DEADLINE}s: {self.output()}")
            time.sleep(0.01)

    def request(
        self, method: str, target: str, body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:  # fmt: skip
        assert self.port is not None, "the runtime is not serving"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            reply_headers = {k.lower(): v for k, v in response.getheaders()}
            return Reply(response.status, reply_headers, response.read())
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.wait()


@dataclass
class Runtimes:
    started: list[Runtime] = field(default_factory=list)

    def start(self, source: Path, handler: str = "main:handle", *extra: str) -> Runtime:
        runtime = Runtime(source, handler, *extra)
        self.started.append(runtime)
        return runtime


def write_source(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (name -> dedented text) into ``folder``; return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder
