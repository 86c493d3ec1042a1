"""A replica whose every handler thread is stuck past the timeout is recycled."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from support.e2e import Platform, http, wait_for

pytestmark = pytest.mark.e2e
NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
HANDLER = """\
import time


def handle(req):
    if req.query.get("block"):
        time.sleep(3600)
    return "fine"
"""


@pytest.fixture
def quick_probes(tmp_path: Path) -> Platform:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(
        "runtime: {probe_interval: 0.3, probe_failures: 2, restart_backoff_min: 0.1}\n"
    )
    return Platform(home)


def test_a_wedged_replica_is_recycled_and_serves_again(
    quick_probes: Platform, tmp_path: Path
) -> None:
    platform = quick_probes
    platform.start()
    try:
        folder = tmp_path / "stuck"
        folder.mkdir()
        (folder / "fn.yaml").write_text(
            "name: stuck\nhandler: main:handle\nconcurrency: 1\ntimeout: 1s\n"
            "scale: {min: 1, max: 1}\n"
        )
        (folder / "main.py").write_text(HANDLER)
        platform.fn("deploy", str(folder), check=True)
        assert platform.invoke("/fn/stuck/").body == b"fine"
        first = revision(platform)["replicas"][0]["name"]

        # the only handler thread never returns: the request times out, the thread stays
        blocked = threading.Thread(target=platform.invoke, args=("/fn/stuck/?block=1",))
        blocked.start()

        def recycled() -> dict[str, object] | None:
            status = revision(platform)
            names = [r["name"] for r in status.get("replicas") or [] if r["ready"]]
            return status if names and first not in names else None

        status = wait_for("the wedged replica to be replaced", recycled, timeout=30)
        reasons = json.dumps(platform.fn("describe", "stuck", "-o", "json").stdout)
        assert "wedged" in platform.logs(), platform.logs()[-2000:]
        assert status["replicas"][0]["restarts"] >= 1, reasons
        assert platform.invoke("/fn/stuck/").body == b"fine"
        blocked.join(30)
    finally:
        platform.stop()


def revision(platform: Platform) -> dict[str, object]:
    reply = http("GET", f"{platform.api}{NS}/revisions/stuck-00001", headers=platform.auth)
    assert reply.status == 200, reply
    status: dict[str, object] = reply.json().get("status") or {}
    return status
