"""One small interface to the platform, whichever backend runs it (the parity suite's).

``Backend`` is what a parity scenario may use: deploy a folder, invoke a path through the
gateway, run ``fn`` against the backend's API with its token, read revisions and
functions, and wait for a condition with a deadline. Both backends serve the same REST
API and write the same ``context.json``, so everything but starting and stopping is
shared (``ApiBackend``):

- ``embedded``: ``fn up`` (``e2e.Platform``);
- ``kubernetes``: the chart's components, a process kubelet and an in-memory API
  (``cluster.KubernetesPlatform``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from support.e2e import Platform, Reply, http, wait_for
from support.live import Live

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"


class Running(Protocol):
    """What a backend's platform gives: addresses, a home with context.json, logs."""

    home: Path

    @property
    def api(self) -> str: ...

    @property
    def gateway(self) -> str: ...

    def logs(self) -> str: ...


class ApiBackend:
    """The interface over a running platform's API, gateway and CLI."""

    name = ""

    def __init__(self, platform: Running, token: str) -> None:
        self.platform = platform
        self.token = token

    @property
    def api(self) -> str:
        return self.platform.api

    @property
    def gateway(self) -> str:
        return self.platform.gateway

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def logs(self) -> str:
        return self.platform.logs()

    # -- the CLI -------------------------------------------------------------------------

    def fn(self, *args: str, check: bool = False, timeout: float = 120) -> Any:
        """``fn ARGS`` against this backend (its home, so its API and token)."""
        env = {**os.environ, "FNMESH_HOME": str(self.platform.home)}
        env.pop("FNMESH_TOKEN", None)
        done = subprocess.run(
            [sys.executable, "-m", "fnmesh.platform.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"[{self.name}] fn {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}\n{done.stderr}\nplatform:\n{self.logs()}"
            )
        return done

    def deploy(self, folder: Path, *options: str) -> str:
        """``fn deploy [OPTIONS] FOLDER``; its output (AssertionError when it fails)."""
        return str(self.fn("deploy", *options, str(folder), check=True).stdout)

    def delete(self, function: str) -> None:
        """Delete ``function`` (and so its revisions and replicas); gone already is fine."""
        reply = http("DELETE", f"{self.api}{NS}/functions/{function}", headers=self.auth)
        assert reply.status in (200, 202, 404), reply

    def watch(self, *args: str) -> Live:
        """``fn ARGS`` left running (``fn tap``), its output read as it comes."""
        env = {**os.environ, "FNMESH_HOME": str(self.platform.home)}
        env.pop("FNMESH_TOKEN", None)
        return Live([sys.executable, "-m", "fnmesh.platform.cli", *args], env)

    def create(self, plural: str, body: dict[str, Any]) -> Reply:
        """POST ``body`` to ``plural`` of the default namespace (e.g. traffictargets)."""
        headers = {**self.auth, "Content-Type": "application/json"}
        return http("POST", f"{self.api}{NS}/{plural}", json.dumps(body).encode(), headers)

    # -- the data path ---------------------------------------------------------------------

    def invoke(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Reply:
        return http(method, self.gateway + path, body, headers, timeout=timeout)

    # -- resources -------------------------------------------------------------------------

    def get(self, path: str) -> Reply:
        """GET ``path`` of the API (relative to the default namespace's group)."""
        return http("GET", f"{self.api}{NS}/{path.lstrip('/')}", headers=self.auth)

    def revisions(self, function: str) -> list[dict[str, Any]]:
        reply = self.get(f"revisions?function={function}")
        assert reply.status == 200, reply
        items: list[dict[str, Any]] = reply.json()["items"]
        return sorted(items, key=lambda r: str(r["metadata"]["name"]))

    def revision(self, name: str) -> dict[str, Any]:
        reply = self.get(f"revisions/{name}")
        assert reply.status == 200, reply
        found: dict[str, Any] = reply.json()
        return found

    def function(self, name: str) -> dict[str, Any]:
        reply = self.get(f"functions/{name}")
        assert reply.status == 200, reply
        found: dict[str, Any] = reply.json()
        return found

    def ready_replicas(self, revision: str) -> int:
        return int((self.revision(revision).get("status") or {}).get("readyReplicas") or 0)

    def at_zero(self, revision: str) -> bool:
        """No replica wanted, none ready."""
        status = self.revision(revision).get("status") or {}
        return not status.get("desiredReplicas") and not status.get("readyReplicas")

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll ``check`` until truthy; at the deadline fail with the platform's logs."""
        try:
            return wait_for(f"[{self.name}] {what}", check, timeout=timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\nplatform:\n{self.logs()[-20000:]}") from None


class EmbeddedBackend(ApiBackend):
    name = "embedded"

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform, str(platform.context["token"]))


class KubernetesBackend(ApiBackend):
    name = "kubernetes"


class Functions:
    """Function folders a scenario writes and deploys; deleted again when it ends."""

    def __init__(self, backend: ApiBackend, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        self.names: set[str] = set()

    def write(self, name: str, code: str, settings: str = "") -> Path:
        where = self.folder / name
        where.mkdir(exist_ok=True)
        (where / "fn.yaml").write_text(f"name: {name}\nhandler: main:handle\n{settings}")
        (where / "main.py").write_text(code)
        return where

    def deploy(self, name: str, code: str, settings: str = "", *options: str) -> str:
        """Write and deploy ``name``; ``fn deploy``'s output."""
        self.names.add(name)
        return self.backend.deploy(self.write(name, code, settings), *options)

    def delete_all(self) -> None:
        for name in sorted(self.names):
            self.backend.delete(name)
