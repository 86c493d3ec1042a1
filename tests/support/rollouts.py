"""Stand-ins for rollout tests, and the API with its controller in a thread of its own.

``ReadyReplicas`` is the runtime and the autoscaler: a revision is ready as soon as the
controller wants it running. ``FakeMetrics`` answers the controller's questions about a
canary's request outcomes. ``ThreadedPlatform`` serves the real API app over a real SQLite
store, with the real controller, in a background event loop, for callers that block (the
CLI); ``run`` executes a store call in that loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from fnmesh.platform.api import ApiDeps, build_app
from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.build import Builder, BuildLimits
from fnmesh.platform.controller import Controller
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.model import Artifact, Condition, Function, Revision, parse_manifest
from fnmesh.platform.model.resources import condition
from fnmesh.platform.store import Conflict, NotFound, SqliteStore, Store

T = TypeVar("T")
HELLO = "name: hello\nhandler: main:handle\n"


@dataclass(frozen=True)
class Sample:
    requests: int
    success_rate: float | None
    p99_ms: float | None


def healthy(requests: int = 100) -> Sample:
    return Sample(requests, 1.0, 20.0)


def erroring(fraction: float, requests: int = 1000) -> Sample:
    return Sample(requests, 1.0 - fraction, 20.0)


class ReadyReplicas:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.removed: list[str] = []

    async def track(self, revision: Revision) -> None:
        await self.scale(revision, 1)

    async def untrack(self, namespace: str, name: str) -> None:
        return None

    async def scale(self, revision: Revision, replicas: int) -> None:
        if replicas == 0 or condition(revision.status.conditions, "Ready") is not None:
            return
        ready = Condition("Ready", "True", "ReplicasReady", "1 of 1 replicas ready")
        with contextlib.suppress(Conflict):
            status = replace(revision.status, conditions=[ready], ready_replicas=1)
            self.store.update_status(revision.with_status(status).to_dict())

    async def remove(self, namespace: str, revision: str) -> None:
        self.removed.append(revision)


class FakeMetrics:
    def __init__(self) -> None:
        self.samples: dict[str, Sample] = {}
        self.asked: list[tuple[str, float]] = []

    def golden(self, namespace: str, revision: str, window: float) -> Sample | None:
        self.asked.append((revision, window))
        return self.samples.get(revision)


class NoLogs:
    def tail(self, namespace: str, function: str, lines: int) -> list[str]:
        return []

    async def follow(self, namespace: str, function: str, lines: int) -> AsyncIterator[str]:
        for line in ():
            yield line


def deploy(store: SqliteStore, version: int, manifest: str = HELLO) -> None:
    """What a deploy does to the store: the function's spec with a new artifact."""
    parsed = parse_manifest(manifest)
    artifact = Artifact(digest="sha256:" + f"{version:x}" * 64, commit=f"{version:x}" * 40)
    spec = replace(parsed.spec, artifact=artifact)
    for _ in range(20):
        try:
            current = Function.from_dict(store.get("Function", parsed.namespace, parsed.name))
        except NotFound:
            store.create(replace(parsed.function(), spec=spec).to_dict())
            return
        try:
            store.update(replace(current, spec=spec).to_dict())
            return
        except Conflict:
            continue
    raise AssertionError("the deploy kept conflicting")


class ThreadedPlatform:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.metrics = FakeMetrics()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""
        self.token = ""

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        self.store = SqliteStore(self.home / "state.db")
        limits = BuildLimits()
        builder = Builder(self.home / "build", limits=limits)
        tokens = Tokens(self.store)
        self.token = tokens.mint("admin")
        app = build_app(
            ApiDeps(
                store=self.store,
                tokens=tokens,
                deploy=DeployService(self.store, builder, limits),
                builder=builder,
                logbook=NoLogs(),
                max_bundle_bytes=limits.max_bundle_bytes,
            )
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self.sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        replicas = ReadyReplicas(self.store)
        self.controller = Controller(
            self.store,
            replicas,
            replicas,
            url_for=lambda ns, n: f"{self.url}/fn/{n}/",
            metrics=self.metrics,
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, ws="none")
        )
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self.controller.start()
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)
        await self.controller.close()
        self.store.close()
        self.sock.close()

    def run(self, call: Callable[[SqliteStore], T]) -> T:
        """``call(store)`` in the platform's thread (SQLite connections stay in theirs)."""

        async def inside() -> T:
            return call(self.store)

        return asyncio.run_coroutine_threadsafe(inside(), self.loop).result(10)

    def function(self, name: str = "hello") -> Function:
        return Function.from_dict(self.run(lambda s: s.get("Function", "default", name)))

    def weights(self, name: str = "hello") -> dict[str, int]:
        return {t.revision: t.percent for t in self.function(name).status.traffic if t.percent}

    def until(self, what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    def deploy_and_wait(self, version: int, manifest: str = HELLO) -> None:
        self.run(lambda store: deploy(store, version, manifest))
        name = f"hello-{version:05d}"
        self.until(
            f"{name} to be the newest ready revision",
            lambda: self.function().status.latest_ready_revision == name,
        )
