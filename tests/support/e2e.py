"""A real platform for end-to-end tests: `fn up` as a process on a temporary home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "functions" / "examples"


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


# Sandboxes need root; elsewhere the platform runs replicas unconfined (and the tests of
# containment are skipped with that reason).
ROOT = os.geteuid() == 0
NEEDS_ROOT = "replicas are sandboxed only when the platform runs as root"


class Platform:
    def __init__(self, home: Path, *, options: tuple[str, ...] = ()) -> None:
        self.home = home
        self.options = options if ROOT else (*options, "--unsafe-no-sandbox")
        self.process: subprocess.Popen[bytes] | None = None
        self.output = home / "up.log"

    @property
    def context(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.home / "context.json").read_text())
        return data

    @property
    def api(self) -> str:
        return str(self.context["api"])

    @property
    def gateway(self) -> str:
        return str(self.context["gateway"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.context['token']}"}

    def start(self) -> None:
        context = self.home / "context.json"
        if context.exists():
            context.unlink()
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fnmesh.platform.cli",
                    "up",
                    "--home",
                    str(self.home),
                    "--api-port",
                    "0",
                    "--gateway-port",
                    "0",
                    *self.options,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )
        wait_for("the platform to start", self._started)

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"fn up exited with {self.process.returncode}:\n{self.logs()}")
        if not (self.home / "context.json").exists():
            return False
        return http("GET", self.api + "/healthz", timeout=2).status == 200

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"fn up did not stop on SIGTERM:\n{self.logs()}") from None

    def logs(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "FNMESH_HOME": str(self.home), "FNMESH_LOG_LEVEL": "INFO"}

    def fn(
        self, *args: str, check: bool = False, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "fnmesh.platform.cli", *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"fn {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}\n{done.stderr}\nplatform:\n{self.logs()}"
            )
        return done

    def invoke(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return http(method, self.gateway + path, body, headers)
