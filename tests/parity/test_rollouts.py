"""Canary rollouts and tags: promoted when healthy, rolled back on errors, tags reached."""

from __future__ import annotations

from typing import Any

import pytest
from support.backends import ApiBackend, Functions
from support.load import Load

pytestmark = pytest.mark.e2e

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
ROLLOUT_TIMEOUT = 20  # seconds: a healthy canary here is promoted in about 5
NEVER_LEAVES_FIRST_STEP = (
    "canary rollouts never leave their first step: the operator reads golden metrics with "
    "controller/remote_metrics.py, which speaks neither the telemetry hub's read API "
    "(/v1/golden/<ns>/<revision>) nor mTLS; it needs the operator's own component identity "
    "and telemetry.HttpMetrics"
)


def code(version: str, fail_every: int = 0) -> str:
    return SOURCE.format(version=version, fail_every=fail_every)


def weights(backend: ApiBackend, name: str) -> dict[str, int]:
    traffic = (backend.function(name).get("status") or {}).get("traffic") or []
    return {t["revision"]: t["percent"] for t in traffic if t.get("percent")}


def rollout(backend: ApiBackend, name: str) -> dict[str, Any]:
    found: dict[str, Any] = (backend.function(name).get("status") or {}).get("rollout") or {}
    return found


def follow(backend: ApiBackend, name: str, load: Load) -> Any:
    """``fn rollout NAME`` under ``load`` until its verdict (0 promoted, 1 rolled back)."""
    try:
        return backend.fn(
            "rollout", name, "--poll", "0.1", "--timeout", str(ROLLOUT_TIMEOUT), timeout=60
        )
    finally:
        load.stop()


def serving(backend: ApiBackend, path: str, version: str) -> None:
    """Wait until ``path`` answers ``version``: ``fn deploy`` returns once the revision is
    ready, and the gateway routes to it once it has seen the traffic move."""
    backend.wait_for(
        f"{path} to answer {version}",
        lambda: backend.invoke(path).body.decode().strip() == version,
        timeout=10,
    )


def answers(backend: ApiBackend, path: str, count: int) -> set[str]:
    seen = set()
    for _ in range(count):
        reply = backend.invoke(path)
        assert reply.status == 200, reply
        seen.add(reply.body.decode().strip())
    return seen


@pytest.mark.lacking_on_kubernetes(reason=NEVER_LEAVES_FIRST_STEP)
def test_a_healthy_canary_is_promoted(backend: ApiBackend, functions: Functions) -> None:
    functions.deploy("steady", code("v1"), CANARY)
    serving(backend, "/fn/steady/", "v1")
    load = Load(backend.gateway + "/fn/steady/", threads=3).start()
    functions.deploy("steady", code("v2"), CANARY)
    done = follow(backend, "steady", load)
    assert done.returncode == 0, (done.stdout, done.stderr, rollout(backend, "steady"))
    assert done.stdout.splitlines()[-1] == "default/steady: promoted"
    assert weights(backend, "steady") == {"steady-00002": 100}
    assert rollout(backend, "steady")["phase"] == "Promoted"
    assert not load.failures, load.failures[:5]
    assert answers(backend, "/fn/steady/", 10) == {"v2"}


@pytest.mark.lacking_on_kubernetes(reason=NEVER_LEAVES_FIRST_STEP)
def test_a_canary_failing_five_percent_is_rolled_back(
    backend: ApiBackend, functions: Functions
) -> None:
    functions.deploy("flaky", code("v1"), CANARY)
    serving(backend, "/fn/flaky/", "v1")
    load = Load(backend.gateway + "/fn/flaky/", threads=3).start()
    functions.deploy("flaky", code("v2", fail_every=20), CANARY)
    done = follow(backend, "flaky", load)
    assert done.returncode == 1, (done.stdout, done.stderr, rollout(backend, "flaky"))
    assert done.stdout.splitlines()[-1] == "default/flaky: rolled back"
    assert weights(backend, "flaky") == {"flaky-00001": 100}
    found = rollout(backend, "flaky")
    assert found["phase"] == "RolledBack" and found["reason"] == "ChecksFailed", found
    assert answers(backend, "/fn/flaky/", 10) == {"v1"}


def test_a_tagged_revision_is_reached_at_zero_percent(
    backend: ApiBackend, functions: Functions
) -> None:
    functions.deploy("tagged", code("v1"))
    functions.deploy("tagged", code("v2"))
    serving(backend, "/fn/tagged/", "v2")
    done = backend.fn("traffic", "tagged", "--tag", "old=tagged-00001", check=True)
    assert "/fn/tagged@old/" in done.stdout, done.stdout
    assert weights(backend, "tagged") == {"tagged-00002": 100}
    backend.wait_for(
        "the tag to route to v1",
        lambda: backend.invoke("/fn/tagged@old/").body.strip() == b"v1",
        timeout=30,
    )
    assert answers(backend, "/fn/tagged@old/", 5) == {"v1"}
    assert answers(backend, "/fn/tagged/", 5) == {"v2"}
