"""Rollouts end to end: a real `fn up`, real replicas, real requests through the gateway.

The canary tests need the mesh's own metrics: the replica proxies report every request to
the platform, which the rollout analysis reads. Where a platform collects none yet, they
are skipped with that reason; every other test needs no metrics.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from support.e2e import Platform, http, wait_for
from support.load import Load

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
CANARY = (
    "rollout: {strategy: canary, stepWeight: 25, maxWeight: 50, interval: 1s, threshold: 2, "
    "minRequests: 20}\n"
)
SOURCE = """\
import itertools

VERSION = {version!r}
FAIL_EVERY = {fail_every}
_count = itertools.count(1)


def handle(req):
    if FAIL_EVERY and next(_count) % FAIL_EVERY == 0:
        return "planned failure\\n", 500
    return VERSION + "\\n"
"""


def write(folder: Path, version: str, *, fail_every: int = 0, rollout: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fn.yaml").write_text(f"name: flaky\nhandler: main:handle\n{rollout}")
    (folder / "main.py").write_text(SOURCE.format(version=version, fail_every=fail_every))
    return folder


def deploy(platform: Platform, folder: Path, version: str, **options: object) -> None:
    write(folder, version, **options)  # type: ignore[arg-type]
    platform.fn("deploy", str(folder), check=True)


def function(platform: Platform) -> dict:  # type: ignore[type-arg]
    reply = http("GET", f"{platform.api}{NS}/functions/flaky", headers=platform.auth)
    assert reply.status == 200, reply
    body: dict = reply.json()  # type: ignore[type-arg]
    return body


def weights(platform: Platform) -> dict[str, int]:
    traffic = function(platform)["status"].get("traffic") or []
    return {t["revision"]: t["percent"] for t in traffic if t.get("percent")}


def answers(platform: Platform, path: str, count: int, host: str | None = None) -> set[str]:
    headers = {"Host": host} if host else None
    seen = set()
    for _ in range(count):
        reply = platform.invoke(path, headers=headers)
        assert reply.status == 200, reply
        seen.add(reply.body.decode().strip())
    return seen


def need_mesh_metrics(platform: Platform) -> None:
    """Skip unless the replica proxies report request outcomes to the platform."""
    for _ in range(50):
        assert platform.invoke("/fn/flaky/").status == 200

    def reported() -> bool:
        reply = http("GET", f"{platform.api}{NS}/functions/flaky/stats", headers=platform.auth)
        if reply.status != 200:
            return False
        return any(row.get("requests") for row in reply.json()["revisions"])

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if reported():
            return
        time.sleep(0.1)
    raise AssertionError("the replica proxies' request metrics never reached the platform")


def follow_rollout(platform: Platform) -> subprocess.CompletedProcess[str]:
    """`fn rollout flaky` until its verdict (exit 0 promoted, 1 rolled back).

    A rollout that never gets past its first step although the canary's requests are
    counted means the controller is not given the platform's metrics: say so.
    """
    done = platform.fn("rollout", "flaky", "--poll", "0.1", "--timeout", "30", timeout=60)
    if "was not over after" in done.stderr:
        canary = function(platform)["status"].get("rollout") or {}
        reply = http("GET", f"{platform.api}{NS}/functions/flaky/stats", headers=platform.auth)
        counted = {r["revision"]: r.get("requests", 0) for r in reply.json()["revisions"]}
        if counted.get(canary.get("canary"), 0) and "0 requests" in canary.get("message", ""):
            pytest.fail(
                "the canary's requests are counted by the telemetry hub but the rollout saw "
                f"none ({canary.get('message')}): the controller is not given the hub as its "
                "metrics (Controller(metrics=...))"
            )
    return done


def test_a_revision_failing_five_percent_is_rolled_back_on_its_own(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "flaky"
    deploy(platform, folder, "v1", rollout=CANARY)
    need_mesh_metrics(platform)
    load = Load(platform.gateway + "/fn/flaky/", threads=3).start()
    try:
        deploy(platform, folder, "v2", fail_every=20, rollout=CANARY)
        follower = follow_rollout(platform)
    finally:
        load.stop()
    out = follower.stdout
    assert follower.returncode == 1, (out, follower.stderr)
    assert out.splitlines()[-1] == "default/flaky: rolled back"
    status = function(platform)["status"]
    assert weights(platform) == {"flaky-00001": 100}
    rollout = status["rollout"]
    assert rollout["phase"] == "RolledBack" and rollout["reason"] == "ChecksFailed"
    assert "success rate" in rollout["message"] and "below 99%" in rollout["message"]
    condition = next(c for c in status["conditions"] if c["type"] == "Rollout")
    assert condition["status"] == "False" and condition["reason"] == "ChecksFailed"
    assert answers(platform, "/fn/flaky/", 30) == {"v1"}


def test_a_healthy_revision_walks_the_steps_with_no_failed_request(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "flaky"
    deploy(platform, folder, "v1", rollout=CANARY)
    need_mesh_metrics(platform)
    load = Load(platform.gateway + "/fn/flaky/", threads=4).start()
    try:
        deploy(platform, folder, "v2", rollout=CANARY)
        follower = follow_rollout(platform)
        wait_for("10,000 requests under load", lambda: load.requests >= 10_000, timeout=120)
    finally:
        load.stop()
    out = follower.stdout
    assert follower.returncode == 0, (out, follower.stderr)
    assert out.splitlines()[-1] == "default/flaky: promoted"
    steps = [line for line in platform.logs().splitlines() if "rollout of default/flaky" in line]
    assert "flaky-00002 takes 25% of the traffic" in steps[0], steps
    assert any("flaky-00002 at 50%" in line for line in steps), steps
    assert "Promoted" in steps[-1], steps
    assert weights(platform) == {"flaky-00002": 100}
    assert load.failures == [], load.failures[:5]
    assert load.requests >= 10_000
    assert set(load.answers) == {"v1", "v2"}


def test_weights_hold_within_three_percent_over_ten_thousand_requests(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "flaky"
    deploy(platform, folder, "v1")
    deploy(platform, folder, "v2")
    done = platform.fn("traffic", "flaky", "--set", "flaky-00001=70", "flaky-00002=30", check=True)
    assert "pinned by hand" in done.stdout
    split = http("GET", f"{platform.api}{NS}/trafficsplits/flaky", headers=platform.auth).json()
    assert {b["service"]: b["weight"] for b in split["spec"]["backends"]} == {
        "flaky-00001": 70,
        "flaky-00002": 30,
    }
    wait_for(
        "both revisions to answer", lambda: answers(platform, "/fn/flaky/", 40) == {"v1", "v2"}
    )
    load = Load(platform.gateway + "/fn/flaky/", threads=4).start(limit=10_000)
    load.wait(timeout=120)
    load.stop()
    assert load.failures == [], load.failures[:5]
    assert load.requests == 10_000
    share = load.answers["v2"] / 10_000
    assert abs(share - 0.30) <= 0.03, load.answers


def test_a_tagged_revision_is_reachable_at_zero_percent(platform: Platform, tmp_path: Path) -> None:
    folder = tmp_path / "flaky"
    deploy(platform, folder, "v1")
    deploy(platform, folder, "v2")
    done = platform.fn("traffic", "flaky", "--tag", "old=1", check=True)
    assert "/fn/flaky@old/" in done.stdout
    assert weights(platform) == {"flaky-00002": 100}
    assert answers(platform, "/fn/flaky/", 20) == {"v2"}
    # the old revision may have been scaled to zero: the first request wakes it
    assert answers(platform, "/fn/flaky@old/", 5) == {"v1"}
    assert answers(platform, "/", 5, host="old-flaky.default.fn.localhost") == {"v1"}
    missing = platform.invoke("/fn/flaky@nope/")
    assert missing.status == 404 and "no tag 'nope'" in missing.json()["error"]
    shown = json.loads(platform.fn("traffic", "flaky", "-o", "json", check=True).stdout)
    assert {"revision": "flaky-00001", "percent": 0, "tag": "old"} in shown["traffic"]


def test_fn_rollback_restores_the_previous_revision_in_one_step(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "flaky"
    deploy(platform, folder, "v1")
    deploy(platform, folder, "v2")
    assert answers(platform, "/fn/flaky/", 5) == {"v2"}
    done = platform.fn("rollback", "flaky", check=True)
    assert done.stdout.strip() == "default/flaky rolled back: flaky-00001 takes 100%"
    assert weights(platform) == {"flaky-00001": 100}
    wait_for("the gateway to follow", lambda: answers(platform, "/fn/flaky/", 1) == {"v1"}, 10)
    assert answers(platform, "/fn/flaky/", 30) == {"v1"}
    revisions = platform.fn("revisions", "flaky", check=True).stdout.splitlines()
    assert revisions[1].split()[0] == "flaky-00002" and revisions[1].split()[3] == "0%"
    assert revisions[2].split()[0] == "flaky-00001" and revisions[2].split()[3] == "100%"
    done = platform.fn("promote", "flaky", check=True)
    assert done.stdout.strip() == "default/flaky promoted: flaky-00002 takes 100%"
    wait_for("v2 to serve again", lambda: answers(platform, "/fn/flaky/", 1) == {"v2"}, 10)
