"""Chaos: kill -9 a replica's proxy, its runtime, or the platform itself.

Each scenario asserts that requests in flight either succeed or fail with a clear status
(idempotent GETs succeed through retries when another replica is up), that nothing is
left running, and that the function serves again within a stated time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from support.e2e import Platform, Reply, http, wait_for
from support.procs import alive, descendants, proxy_of

pytestmark = pytest.mark.e2e
NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
RECOVERY = 20.0  # seconds within which the function serves from a full set again


def deploy(platform: Platform, tmp_path: Path, replicas: int) -> None:
    folder = tmp_path / "steady"
    folder.mkdir()
    (folder / "fn.yaml").write_text(
        f"name: steady\nhandler: main:handle\nscale: {{min: {replicas}, max: {replicas}}}\n"
    )
    (folder / "main.py").write_text("def handle(req):\n    return 'steady'\n")
    platform.fn("deploy", str(folder), check=True)
    wait_for(f"{replicas} ready replicas", lambda: ready(platform) == replicas, 30)


def status(platform: Platform) -> dict[str, object]:
    reply = http("GET", f"{platform.api}{NS}/revisions/steady-00001", headers=platform.auth)
    assert reply.status == 200, reply
    found: dict[str, object] = reply.json().get("status") or {}
    return found


def ready(platform: Platform) -> int:
    return int(status(platform).get("readyReplicas") or 0)


class Load:
    """GETs in a loop from a thread; every reply kept."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.replies: list[Reply] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.replies.append(self.platform.invoke("/fn/steady/"))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def failures(self) -> list[tuple[int, bytes]]:
        return [(r.status, r.body[:200]) for r in self.replies if r.status != 200]


@pytest.mark.parametrize("victim", ["proxy", "runtime"])
def test_kill_9_of_a_replica_loses_no_idempotent_request(
    platform: Platform, tmp_path: Path, victim: str
) -> None:
    deploy(platform, tmp_path, replicas=2)
    assert platform.process is not None
    first = status(platform)["replicas"][0]  # type: ignore[index]
    runtime_pid = int(first["pid"])
    target = runtime_pid if victim == "runtime" else proxy_of(first)
    doomed = {target, *descendants(target)}
    with Load(platform) as load:
        wait_for("some requests to be served", lambda: len(load.replies) >= 20, 10)
        os.kill(target, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for("the dead replica to be replaced", lambda: replaced(platform, first), RECOVERY)
        recovered = time.monotonic() - killed_at
        wait_for("requests after the recovery", lambda: len(load.replies) >= 60, 10)
    assert load.failures() == [], load.failures()[:5]
    assert recovered < RECOVERY
    wait_for("no process of the killed replica", lambda: not alive(doomed), 10)


def replaced(platform: Platform, first: dict[str, object]) -> bool:
    current = status(platform)
    names = [r["name"] for r in current.get("replicas") or [] if r["ready"]]  # type: ignore[attr-defined]
    return len(names) == 2 and first["name"] not in names


def test_kill_9_of_the_platform_during_a_deploy(platform: Platform, tmp_path: Path) -> None:
    deploy(platform, tmp_path, replicas=1)
    assert platform.process is not None
    before = descendants(platform.process.pid)
    folder = tmp_path / "steady"
    (folder / "main.py").write_text("def handle(req):\n    return 'steady v2'\n")
    deploying = threading.Thread(target=platform.fn, args=("deploy", str(folder)))
    deploying.start()  # killed wherever the deploy has got to
    platform.process.kill()
    platform.process.wait()
    deploying.join(60)
    wait_for("every process of the killed platform to go", lambda: not alive(before), 30)

    platform.start()
    build = platform.home / "build"
    partial = [p for p in build.rglob("*") if ".partial" in p.name or p.parent.name == "tmp"]
    assert partial == [], partial
    wait_for(
        "the function to serve again",
        lambda: platform.invoke("/fn/steady/").body in (b"steady", b"steady v2"),
        RECOVERY,
    )
