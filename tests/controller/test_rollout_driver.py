"""The controller's driver running rollouts over each store it runs on -- SQLite (``fn up``)
and custom resources on the in-memory Kubernetes API (the operator) -- with stand-in
metrics.

The replicas are stand-ins (a revision is ready as soon as it is wanted) and the metrics
come from ``FakeMetrics``; every TrafficSplit the controller writes is checked against
SMI's schema (the chart's copy of the CRD).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kmockapi import ApiThread
from rolloutkit import digest, erroring, healthy
from support.rollouts import FakeMetrics, ReadyReplicas

from fnmesh.platform.controller import Controller
from fnmesh.platform.model import Artifact, Function, parse_manifest
from fnmesh.platform.model.resources import condition
from fnmesh.platform.model.traffic import split_weights
from fnmesh.platform.store import Conflict, SqliteStore, Store
from fnmesh.platform.store.kubernetes import KubeClient, KubernetesStore
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.report import parse_report

SMI = Path(__file__).resolve().parents[2] / "charts" / "fnmesh" / "crds" / "smi-split.yaml"
MANIFEST = """\
name: hello
handler: main:handle
rollout: {strategy: canary, stepWeight: 25, maxWeight: 50, interval: 0.15s, threshold: 2,
          minRequests: 10}
"""


def split_schema() -> dict[str, Any]:
    crd = yaml.safe_load(SMI.read_text())
    (v1alpha4,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha4"]
    schema: dict[str, Any] = v1alpha4["schema"]["openAPIV3Schema"]
    return schema


class Splits:
    """Every TrafficSplit the store sees, in order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seen: list[dict[str, int]] = []
        self.bodies: list[dict[str, Any]] = []

    async def follow(self) -> None:
        async for event in self.store.watch(frozenset({"TrafficSplit"}), 0):
            self.bodies.append(event.object)
            self.seen.append(dict(split_weights(event.object)))


async def until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Harness:
    def __init__(self, store: Store, metrics: FakeMetrics, replicas: ReadyReplicas) -> None:
        self.store = store
        self.metrics = metrics
        self.replicas = replicas
        self.splits = Splits(store)

    def function(self) -> Function:
        return Function.from_dict(self.store.get("Function", "default", "hello"))

    def weights(self) -> dict[str, int]:
        return {t.revision: t.percent for t in self.function().status.traffic if t.percent}

    def deploy(self, version: int, manifest: str = MANIFEST) -> None:
        spec = replace(parse_manifest(manifest).spec, artifact=Artifact(digest=digest(version)))
        for _ in range(20):
            try:
                current = self.function()
            except Exception:
                self.store.create(replace(parse_manifest(manifest).function(), spec=spec).to_dict())
                return
            try:
                self.store.update(replace(current, spec=spec).to_dict())
                return
            except Conflict:
                continue
        raise AssertionError("could not deploy")

    def revisions(self) -> list[str]:
        items = self.store.list("Revision", "default")[0]
        return sorted(i["metadata"]["name"] for i in items)


@contextlib.contextmanager
def kubernetes_store() -> Iterator[KubernetesStore]:
    """Custom resources on the in-memory Kubernetes API, as the operator keeps them."""
    with ApiThread(namespaces=("default",)) as cluster:
        # as the cluster's admin: the tests write Functions too, as the API would
        client = KubeClient(cluster.api_client(), timeout=5)
        store = KubernetesStore(client, retry_delay=0.05)
        try:
            yield store
        finally:
            store.close()


@contextlib.contextmanager
def sqlite_store(home: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(home / "state.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=["embedded", "kubernetes"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The driver over SQLite (embedded) or custom resources (kubernetes), the same way."""
    on_kubernetes = request.param == "kubernetes"
    with kubernetes_store() if on_kubernetes else sqlite_store(tmp_path) as store:
        metrics = FakeMetrics()
        replicas = ReadyReplicas(store)
        controller = Controller(
            store,
            replicas,
            replicas,
            url_for=lambda ns, name: f"http://gw/fn/{name}/",
            metrics=metrics,
            keep_revisions=3,
            retire_grace=0.2,
            blocking_store=on_kubernetes,
        )
        found = Harness(store, metrics, replicas)
        follow = asyncio.create_task(found.splits.follow())
        controller.start()
        try:
            yield found
        finally:
            await controller.close()
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow


async def first_deploy(h: Harness, manifest: str = MANIFEST) -> None:
    h.deploy(1, manifest)
    await until("hello-00001 to serve", lambda: h.weights() == {"hello-00001": 100})


async def test_a_healthy_canary_walks_the_steps_and_is_promoted(harness: Harness) -> None:
    h = harness
    await first_deploy(h)
    h.metrics.samples["hello-00002"] = healthy()
    h.deploy(2)

    def promoted() -> bool:
        state = h.function().status.rollout
        return state is not None and state.phase == "Promoted"

    await until("the canary to be promoted", promoted)
    await until("the split to follow", lambda: h.splits.seen[-1] == {"hello-00002": 100})
    assert h.splits.seen == [
        {"hello-00001": 100},
        {"hello-00001": 75, "hello-00002": 25},
        {"hello-00001": 50, "hello-00002": 50},
        {"hello-00002": 100},
    ]
    assert {revision for revision, _ in h.metrics.asked} == {"hello-00002"}
    assert all(window == pytest.approx(0.15) for _, window in h.metrics.asked)
    schema = split_schema()
    for body in h.splits.bodies:
        jsonschema.validate(body, schema)
        assert body["apiVersion"] == "split.smi-spec.io/v1alpha4"


async def test_an_erroring_canary_is_rolled_back_on_its_own(harness: Harness) -> None:
    h = harness
    await first_deploy(h)
    h.metrics.samples["hello-00002"] = erroring(0.05)
    h.deploy(2)

    def rolled_back() -> Any:
        state = h.function().status.rollout
        return state is not None and state.phase == "RolledBack" and state

    state = await until("the canary to be rolled back", rolled_back)
    assert state.reason == "ChecksFailed" and "success rate 95.00%" in state.message
    assert h.weights() == {"hello-00001": 100}
    await until("the split to follow", lambda: h.splits.seen[-1] == {"hello-00001": 100})
    assert {"hello-00001": 75, "hello-00002": 25} in h.splits.seen
    assert {"hello-00002": 100} not in h.splits.seen
    rollout = condition(h.function().status.conditions, "Rollout")
    assert rollout is not None and rollout.status == "False"


async def test_without_metrics_a_canary_waits_at_its_first_step(harness: Harness) -> None:
    h = harness
    await first_deploy(h)
    h.deploy(2)
    await until("three checks", lambda: len(h.metrics.asked) >= 3)
    assert h.weights() == {"hello-00001": 75, "hello-00002": 25}
    state = h.function().status.rollout
    assert state is not None and state.reason == "TooFewRequests" and state.failed_checks == 0


async def test_old_revisions_are_collected_past_the_limit(harness: Harness) -> None:
    h = harness
    immediate = "name: hello\nhandler: main:handle\n"
    await first_deploy(h, immediate)
    for version in (2, 3, 4, 5):
        h.deploy(version, immediate)
        name = f"hello-{version:05d}"
        await until(f"{name} to serve", lambda name=name: h.weights() == {name: 100})
    await until(
        "a limit of 3", lambda: h.revisions() == ["hello-00003", "hello-00004", "hello-00005"]
    )
    assert h.replicas.removed == ["hello-00001", "hello-00002"]


async def test_the_telemetry_hub_is_the_controllers_metrics(tmp_path: Path) -> None:
    """The real hub, fed the replica proxies' reports, drives a rollout to its promotion."""
    store = SqliteStore(tmp_path / "state.db")
    hub = TelemetryHub()
    replicas = ReadyReplicas(store)
    controller = Controller(
        store, replicas, replicas, url_for=lambda ns, name: "u", metrics=hub, retire_grace=0.2
    )
    h = Harness(store, FakeMetrics(), replicas)
    controller.start()

    async def report() -> None:
        while True:
            sample = parse_report(
                {
                    "namespace": "default",
                    "function": "hello",
                    "revision": "hello-00002",
                    "replica": "hello-00002-a",
                    "concurrency": 1,
                    "requests": 40,
                    "success": 40,
                    "failure": 0,
                    "latencyBuckets": {"5": 40},
                }
            )
            hub.ingest(sample)
            await asyncio.sleep(0.05)

    feeding = asyncio.create_task(report())
    try:
        await first_deploy(h)
        h.deploy(2)
        await until(
            "the promotion",
            lambda: feeding.done() or h.weights() == {"hello-00002": 100},
        )
        assert not feeding.done(), feeding
        state = h.function().status.rollout
        assert state is not None and state.phase == "Promoted"
        assert state.message is not None and "success rate 100.00%" in state.message
    finally:
        feeding.cancel()
        await controller.close()
        store.close()
