"""How the driver is fed when it does not follow the store's change feed (the operator:
kopf calls it): its periodic resync finds what no event announced, in the namespaces it
may list, and a reconcile called directly raises what the store refused."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.failing_store import FailingStore
from support.rollouts import ReadyReplicas

from fnmesh.platform.controller import Controller
from fnmesh.platform.model import Artifact, parse_manifest
from fnmesh.platform.store import SqliteStore


async def until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def create(store: SqliteStore, namespace: str) -> None:
    manifest = parse_manifest(f"name: hello\nnamespace: {namespace}\nhandler: main:handle\n")
    spec = replace(manifest.spec, artifact=Artifact(digest="sha256:" + "a" * 64))
    store.create(replace(manifest.function(), spec=spec).to_dict())


def revisions(store: SqliteStore, namespace: str) -> list[str]:
    return [r["metadata"]["name"] for r in store.list("Revision", namespace)[0]]


async def test_the_resync_finds_functions_no_event_announced(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    replicas = ReadyReplicas(store)
    controller = Controller(store, replicas, None, url_for=lambda ns, n: f"http://gw/{ns}/{n}/")
    create(store, "team-a")
    create(store, "elsewhere")
    controller.start(follow=False, resync=0.05, namespaces=["team-a"])
    try:
        await until("the resync to stamp team-a's revision", lambda: revisions(store, "team-a"))
        assert revisions(store, "team-a") == ["hello-00001"]
        assert revisions(store, "elsewhere") == []  # a namespace it was not given
    finally:
        await controller.close()
        store.close()


async def test_a_direct_reconcile_raises_what_the_store_refused(tmp_path: Path) -> None:
    inner = SqliteStore(tmp_path / "state.db")
    store = FailingStore(inner)
    replicas = ReadyReplicas(inner)
    controller = Controller(store, replicas, None, url_for=lambda ns, n: "u")
    create(inner, "team-a")
    store.full = True
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        await controller.reconcile("team-a", "hello")  # kopf retries it
    store.full = False
    await controller.reconcile("team-a", "hello")
    assert revisions(inner, "team-a") == ["hello-00001"]
    await controller.close()
    inner.close()
