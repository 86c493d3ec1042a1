"""The controller's worker while the store cannot write: each failure shows on the task
board, the function is tried again after the backoff, and its status converges once the
store writes again -- nothing is dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from support.failing_store import FailingStore
from support.rollouts import ReadyReplicas

from fnmesh.platform.controller import Controller
from fnmesh.platform.model import Artifact, Function, parse_manifest
from fnmesh.platform.store import SqliteStore
from fnmesh.platform.supervise import TaskBoard


async def until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_status_converges_once_the_store_writes_again(tmp_path: Path) -> None:
    inner = SqliteStore(tmp_path / "state.db")
    store = FailingStore(inner)
    tasks = TaskBoard(minimum=0.01, maximum=0.05)
    replicas = ReadyReplicas(inner)
    controller = Controller(
        store, replicas, replicas, url_for=lambda ns, n: f"http://gw/fn/{n}/", tasks=tasks
    )
    controller.start()
    try:
        store.full = True
        manifest = parse_manifest("name: hello\nhandler: main:handle\n")
        spec = replace(manifest.spec, artifact=Artifact(digest="sha256:" + "a" * 64))
        inner.create(replace(manifest.function(), spec=spec).to_dict())

        def worker() -> Any:
            return next((s for s in tasks.states() if s.name == "controller worker"), None)

        await until("the worker to fail a few times", lambda: worker().failures >= 3)
        state = worker()
        assert state.state == "failing"
        assert state.last_error == "reconciling function default/hello: database or disk is full"
        assert [s.name for s in tasks.failing()] == ["controller worker"]
        assert inner.list("Revision")[0] == []

        store.full = False

        def converged() -> bool:
            fn = Function.from_dict(inner.get("Function", "default", "hello"))
            return (
                fn.status.latest_ready_revision == "hello-00001"
                and fn.status.observed_generation == 1
            )

        await until("the revision to be stamped and the status written", converged)
        await until("the worker to recover", lambda: worker().state == "running")
        assert tasks.failing() == []
    finally:
        await controller.close()
        inner.close()
