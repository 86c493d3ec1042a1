"""The controller's driver: follows the store, reconciles one function at a time.

Level-triggered: any change to a function or one of its revisions queues the function;
reconciling reads the current state, asks ``plan`` what to do, and applies it -- create
the next revision, write the TrafficSplit and the function's status, tell the runtime how
many replicas each revision needs. A write that loses a race (409) requeues the function.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from typing import Protocol

from fnmesh.platform.controller.plan import plan
from fnmesh.platform.model import Function, Revision, TrafficTarget
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.model.traffic import make_traffic_split
from fnmesh.platform.store import Conflict, Expired, NotFound, Store

log = logging.getLogger("fnmesh.controller")
Key = tuple[str, str]


class Scaler(Protocol):
    """The runtime: replicas of a revision."""

    async def scale(self, revision: Revision, replicas: int) -> None: ...

    async def remove(self, namespace: str, revision: str) -> None: ...


class Sizer(Protocol):
    """The autoscaler: sizes the revisions it tracks."""

    async def track(self, revision: Revision) -> None: ...

    async def untrack(self, namespace: str, name: str) -> None: ...


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    def __init__(
        self,
        store: Store,
        scaler: Scaler,
        sizer: Sizer,
        *,
        url_for: Callable[[str, str], str],
        now: Callable[[], str] = _now,
    ) -> None:
        self.store = store
        self.scaler = scaler
        self.sizer = sizer
        self.url_for = url_for
        self.now = now
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: set[Key] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow(), name="controller watch"),
            asyncio.create_task(self._work(), name="controller worker"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def enqueue(self, key: Key) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    async def _follow(self) -> None:
        while True:
            functions, version = self.store.list("Function")
            for item in functions:
                self.enqueue((item["metadata"]["namespace"], item["metadata"]["name"]))
            try:
                async for event in self.store.watch(frozenset({"Function", "Revision"}), version):
                    if event.kind == "Function":
                        self.enqueue((event.namespace, event.name))
                    else:
                        owner = (event.object["metadata"].get("labels") or {}).get(LABEL_FUNCTION)
                        if owner:
                            self.enqueue((event.namespace, owner))
            except Expired:
                continue

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            try:
                await self.reconcile(*key)
            except Conflict:
                self.enqueue(key)
            except Exception:
                log.exception("reconciling function %s/%s failed", *key)

    async def reconcile(self, namespace: str, name: str) -> None:
        revisions = [
            Revision.from_dict(o)
            for o in self.store.list("Revision", namespace, {LABEL_FUNCTION: name})[0]
        ]
        try:
            function = Function.from_dict(self.store.get("Function", namespace, name))
        except NotFound:
            await self._cleanup(namespace, name, revisions)
            return
        decided = plan(function, revisions, url=self.url_for(namespace, name), now=self.now())
        if decided.create is not None:
            self.store.create(decided.create.to_dict())
            log.info("revision %s/%s stamped", namespace, decided.create.name)
        self._write_split(function, decided.traffic)
        if decided.status != function.status:
            self.store.update_status(function.with_status(decided.status).to_dict())
        by_name = {r.name: r for r in revisions}
        if decided.create is not None:
            by_name[decided.create.name] = Revision.from_dict(
                self.store.get("Revision", namespace, decided.create.name)
            )
        for name in decided.active:
            await self.sizer.track(by_name[name])
        for name in decided.inactive:
            await self.sizer.untrack(namespace, name)
            await self.scaler.scale(by_name[name], 0)

    def _write_split(self, function: Function, traffic: list[TrafficTarget]) -> None:
        if not traffic:
            return
        desired = make_traffic_split(function, traffic)
        try:
            current = self.store.get("TrafficSplit", function.namespace, function.name)
        except NotFound:
            self.store.create(desired)
            return
        if current.get("spec") != desired["spec"]:
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.store.update(desired)

    async def _cleanup(self, namespace: str, name: str, revisions: list[Revision]) -> None:
        for revision in revisions:
            await self.sizer.untrack(namespace, revision.name)
            await self.scaler.remove(namespace, revision.name)
            with contextlib.suppress(NotFound):
                self.store.delete("Revision", namespace, revision.name)
        with contextlib.suppress(NotFound):
            self.store.delete("TrafficSplit", namespace, name)
        if revisions:
            log.info("function %s/%s removed with %d revisions", namespace, name, len(revisions))
