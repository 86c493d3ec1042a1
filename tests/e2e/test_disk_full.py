"""The platform's home on a tiny tmpfs, filled up while a replica dies, then freed.

While the disk is full the revision's reconcile loop cannot write its status: /healthz
answers 503 naming it, and nothing dies. Once space is back the replica has been
restarted, the status converges, /healthz is 200 again, and `fn up` stops cleanly.
Needs root (it mounts a tmpfs).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.e2e import EXAMPLES, Platform, http, wait_for

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
REVISION = "revision default/hello-00001"


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def tiny_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(home)], check=True)
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def fill(path: Path) -> None:
    chunk = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 512)


def revision(platform: Platform) -> dict[str, Any]:
    reply = http("GET", f"{platform.api}{NS}/revisions/hello-00001", headers=platform.auth)
    assert reply.status == 200, reply
    found: dict[str, Any] = reply.json()
    return found


def ready_pids(platform: Platform) -> list[int]:
    status = revision(platform).get("status") or {}
    return [r["pid"] for r in status.get("replicas") or [] if r.get("ready") and r.get("pid")]


def health(platform: Platform) -> tuple[int, dict[str, Any]]:
    reply = http("GET", platform.api + "/healthz", timeout=5)
    body: dict[str, Any] = reply.json()
    return reply.status, body


def test_a_replica_dying_on_a_full_disk_is_restarted_once_space_is_back(
    tiny_home: Path, tmp_path: Path
) -> None:
    platform = Platform(tiny_home)
    platform.output = tmp_path / "up.log"  # outside the full disk, to see what happened
    platform.start()
    filler = tiny_home / "filler"
    try:
        hello = tmp_path / "hello"
        shutil.copytree(EXAMPLES / "hello", hello)
        (hello / "fn.yaml").write_text(
            (hello / "fn.yaml").read_text() + "scale: {min: 1}\n"  # keep one replica
        )
        platform.fn("deploy", str(hello), check=True)
        (first,) = wait_for("one ready replica", lambda: ready_pids(platform))
        assert platform.invoke("/fn/hello/?name=disk").status == 200

        fill(filler)
        os.kill(first, signal.SIGKILL)  # the replica dies while nothing can be written

        def failing() -> dict[str, Any] | None:
            code, body = health(platform)
            named = [t for t in body.get("failing", []) if t["name"] == REVISION]
            return named[0] if code == 503 and named else None

        task = wait_for("/healthz to name the failing reconcile", failing, 60)
        assert "database or disk is full" in task["lastError"], task
        described = platform.fn("describe", "hello")
        assert f"{REVISION} is failing" in described.stdout, described
        assert platform.process is not None and platform.process.poll() is None

        filler.unlink()  # space is back

        def restarted() -> list[int]:
            pids = ready_pids(platform)
            return pids if pids and first not in pids else []

        wait_for("the status to show a restarted replica", restarted, 60)
        wait_for("/healthz to be 200 again", lambda: health(platform)[0] == 200, 60)
        assert platform.invoke("/fn/hello/?name=back").status == 200
    finally:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()
        code = platform.stop()
    assert code == 0, platform.logs()[-3000:]
    assert "Traceback" not in platform.logs().split("fnmesh is stopping")[-1], platform.logs()[
        -3000:
    ]
