"""Resource limits hold: a function over its memory is OOM-killed and restarted, alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from support.e2e import NEEDS_ROOT, ROOT, Platform, http, wait_for
from support.load import Load

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not ROOT, reason=NEEDS_ROOT)]
NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
HOG = """\
def handle(req):
    if req.query.get("hog"):
        hoard = [bytearray(1024 * 1024) for _ in range(400)]  # 400 MiB, touched
        return str(len(hoard))
    return "fine"
"""


def deploy(platform: Platform, folder: Path, manifest: str, code: str) -> None:
    folder.mkdir()
    (folder / "fn.yaml").write_text(manifest)
    (folder / "main.py").write_text(code)
    platform.fn("deploy", str(folder), check=True)


def revision(platform: Platform, name: str) -> dict[str, object]:
    reply = http("GET", f"{platform.api}{NS}/revisions/{name}", headers=platform.auth)
    assert reply.status == 200, reply
    status: dict[str, object] = reply.json().get("status") or {}
    return status


def test_a_function_over_its_memory_is_oom_killed_and_the_others_keep_serving(
    platform: Platform, tmp_path: Path
) -> None:
    deploy(
        platform,
        tmp_path / "hog",
        "name: hog\nhandler: main:handle\nresources: {memory: 64Mi}\nscale: {min: 1, max: 1}\n",
        HOG,
    )
    deploy(
        platform,
        tmp_path / "calm",
        "name: calm\nhandler: main:handle\nscale: {min: 1, max: 1}\n",
        "def handle(req):\n    return 'calm'\n",
    )
    assert platform.invoke("/fn/hog/").body == b"fine"
    first = revision(platform, "hog-00001")["replicas"][0]["name"]  # type: ignore[index]
    load = Load(platform.gateway + "/fn/calm/", threads=2).start()
    try:
        wait_for("calm to serve under load", lambda: load.requests >= 20, 10)
        hogged = platform.invoke("/fn/hog/?hog=1")
        assert hogged.status in (502, 503), hogged  # its replica died under it

        def restarted() -> dict[str, object] | None:
            status = revision(platform, "hog-00001")
            ready = [r for r in status.get("replicas") or [] if r["ready"]]  # type: ignore[attr-defined]
            return status if ready and ready[0]["name"] != first else None

        wait_for("the OOM-killed replica to be restarted", restarted, timeout=30)
        described = platform.fn("describe", "hog", "-o", "json", check=True).stdout
        assert "OOMKilled" in described or "OOMKilled" in platform.logs()
        assert platform.invoke("/fn/hog/").body == b"fine"
        served = load.requests
        wait_for("calm to keep serving", lambda: load.requests >= served + 20, 10)
    finally:
        load.stop()
    assert load.failures == [], load.failures[:5]


def test_limits_are_reported_by_fn_describe(platform: Platform, tmp_path: Path) -> None:
    deploy(
        platform,
        tmp_path / "small",
        "name: small\nhandler: main:handle\nresources: {memory: 96Mi, cpu: 250m, pids: 32}\n",
        "def handle(req):\n    return 'small'\n",
    )
    described = platform.fn("describe", "small", check=True).stdout
    assert "96Mi" in described and "250m" in described and "32" in described


def test_a_fork_bomb_is_contained_by_its_pids_limit(platform: Platform, tmp_path: Path) -> None:
    bomb = (
        "import os\n\n"
        "def handle(req):\n"
        "    made = 0\n"
        "    for _ in range(200):\n"
        "        try:\n"
        "            if os.fork() == 0:\n"
        "                import time; time.sleep(30); os._exit(0)\n"
        "            made += 1\n"
        "        except OSError:\n"
        "            break\n"
        "    return str(made)\n"
    )
    deploy(
        platform,
        tmp_path / "bomb",
        "name: bomb\nhandler: main:handle\nresources: {pids: 32}\n",
        bomb,
    )
    made = int(platform.invoke("/fn/bomb/").body)
    assert made < 32, made  # the limit stopped it, counting the runtime's own threads
    done = threading.Event()
    threading.Thread(target=lambda: (platform.invoke("/fn/bomb/"), done.set())).start()
    assert done.wait(30)
