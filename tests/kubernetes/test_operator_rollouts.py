"""The controller's driver under kopf, on the in-memory Kubernetes API: canary rollouts
step on the canary's metrics to a promotion or a rollback, and old revisions go with
their Deployment and Service. The metrics come from a stand-in hub over HTTP (the
operator's ``FNMESH_TELEMETRY_URL``) or are injected; replicas are reported ready by the
test, as the cluster would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kmockapi import ApiThread
from operatorkit import (
    RunningOperator,
    function,
    get,
    history,
    names,
    patch,
    path,
    ready,
    report_ready,
    until,
)
from support.e2e import wait_for
from support.golden_server import GoldenServer, healthy_body
from support.rollouts import FakeMetrics, erroring

from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig

CANARY = {
    "strategy": "canary",
    "stepWeight": 25,
    "maxWeight": 50,
    "interval": 0.4,
    "threshold": 2,
    "minRequests": 10,
}
TIMEOUT = 15.0


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread() as thread:
        yield thread


def digest(version: int) -> str:
    return "sha256:" + f"{version:x}" * 64


def revision_name(version: int) -> str:
    return f"hello-{version:05d}"


def weights(split: dict[str, Any]) -> dict[str, int]:
    return {b["service"]: b["weight"] for b in split["spec"]["backends"]}


def split_steps(cluster: ApiThread) -> list[dict[str, int]]:
    """Each distinct weighting the TrafficSplit had, in order."""
    steps: list[dict[str, int]] = []
    for version in history(cluster, "TrafficSplit", "hello"):
        if not steps or steps[-1] != weights(version):
            steps.append(weights(version))
    return steps


def rollout(fn: dict[str, Any]) -> dict[str, Any]:
    return dict((fn.get("status") or {}).get("rollout") or {})


def deploy(cluster: ApiThread, version: int, **spec: Any) -> None:
    """A new artifact for hello (made on the first call); its revision's pods get ready."""
    if version == 1:
        cluster.request("POST", path("Function"), function(digest=digest(1), **spec))
    else:
        artifact = {"digest": digest(version), "build": f"b-{version}"}
        patch(cluster, "Function", "hello", {"spec": {"artifact": artifact}})
    until(cluster, "Deployment", revision_name(version), timeout=TIMEOUT)
    report_ready(cluster, revision_name(version))


def serves(cluster: ApiThread, wanted: dict[str, int]) -> dict[str, Any]:
    return until(cluster, "TrafficSplit", "hello", lambda s: weights(s) == wanted, TIMEOUT)


def test_a_healthy_canary_steps_to_its_promotion(cluster: ApiThread) -> None:
    with GoldenServer() as hub:
        config = OperatorConfig(telemetry_url=hub.url, retire_grace=0.2)
        with RunningOperator(cluster, config):
            deploy(cluster, 1, rollout=CANARY)
            serves(cluster, {"hello-00001": 100})
            hub.answers["hello-00002"] = healthy_body()
            deploy(cluster, 2)
            fn = until(
                cluster,
                "Function",
                "hello",
                lambda f: rollout(f).get("phase") == "Promoted",
                TIMEOUT,
            )
            assert fn["status"]["traffic"] == [{"revision": "hello-00002", "percent": 100}]
            assert split_steps(cluster) == [
                {"hello-00001": 100},
                {"hello-00001": 75, "hello-00002": 25},
                {"hello-00001": 50, "hello-00002": 50},
                {"hello-00002": 100},
            ]
            assert {q["revision"] for q in hub.asked} == {"hello-00002"}
            assert {(q["namespace"], q["window"]) for q in hub.asked} == {("team-a", "0.4")}
            # the stable revision keeps its replicas for the retire grace, then none
            until(
                cluster, "Deployment", "hello-00001", lambda d: d["spec"]["replicas"] == 0, TIMEOUT
            )
            assert get(cluster, "Deployment", "hello-00002")["spec"]["replicas"] == 1


def test_a_canary_with_five_percent_errors_is_rolled_back(cluster: ApiThread) -> None:
    metrics = FakeMetrics()
    with RunningOperator(cluster, OperatorConfig(retire_grace=0.2), metrics=metrics):
        deploy(cluster, 1, rollout=CANARY)
        serves(cluster, {"hello-00001": 100})
        metrics.samples["hello-00002"] = erroring(0.05)
        deploy(cluster, 2)
        fn = until(
            cluster, "Function", "hello", lambda f: rollout(f).get("phase") == "RolledBack", TIMEOUT
        )
        state = rollout(fn)
        assert state["reason"] == "ChecksFailed"
        assert "success rate 95.00%" in state["message"]
        assert state["failedChecks"] == 2
        conditions = {c["type"]: c for c in fn["status"]["conditions"]}
        assert conditions["Rollout"]["status"] == "False"
        assert serves(cluster, {"hello-00001": 100})
        steps = split_steps(cluster)
        assert {"hello-00001": 75, "hello-00002": 25} in steps
        assert {"hello-00002": 100} not in steps
        assert {"hello-00001": 50, "hello-00002": 50} not in steps  # it never passed a check
        # the rolled-back canary is held back: scaled to zero after the grace
        until(cluster, "Deployment", "hello-00002", lambda d: d["spec"]["replicas"] == 0, TIMEOUT)
        assert get(cluster, "Deployment", "hello-00001")["spec"]["replicas"] == 1


def test_without_metrics_a_canary_waits_at_its_first_step(cluster: ApiThread) -> None:
    with RunningOperator(cluster, OperatorConfig(retire_grace=0.2)):  # no telemetry URL
        deploy(cluster, 1, rollout=CANARY)
        serves(cluster, {"hello-00001": 100})
        deploy(cluster, 2)
        fn = until(
            cluster,
            "Function",
            "hello",
            lambda f: rollout(f).get("reason") == "TooFewRequests",
            TIMEOUT,
        )
        assert rollout(fn)["failedChecks"] == 0
        assert ready(fn)["status"] == "True"
        assert weights(get(cluster, "TrafficSplit", "hello")) == {
            "hello-00001": 75,
            "hello-00002": 25,
        }


def test_old_revisions_past_the_limit_go_with_their_workloads(cluster: ApiThread) -> None:
    with RunningOperator(cluster, OperatorConfig(keep_revisions=2, retire_grace=0.1)):
        for version in (1, 2, 3, 4):
            deploy(cluster, version)
            serves(cluster, {revision_name(version): 100})
        kept = {"hello-00003", "hello-00004"}

        def gone() -> bool:
            return (
                names(cluster, "Revision") == kept
                and names(cluster, "Deployment") == kept
                and names(cluster, "Service") == {"hello", *kept}
            )

        wait_for("revisions past the limit of 2 to go with their workloads", gone, TIMEOUT)
        fn = get(cluster, "Function", "hello")
        assert fn["status"]["latestReadyRevision"] == "hello-00004"
        assert fn["status"]["revisionCount"] == 4
        # the revision before the newest keeps no replicas once it has retired
        until(cluster, "Deployment", "hello-00003", lambda d: d["spec"]["replicas"] == 0, TIMEOUT)
