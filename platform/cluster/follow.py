"""Which revisions the autoscaler sizes on a cluster, and their ready replicas.

On one machine the controller tells the autoscaler which revisions to track. On a
cluster the controller runs in the operator, another process, so the autoscaler follows
Functions and Revisions itself and reads what the controller decided off the status it
wrote (``controller.plan.active_revisions``, the rule ``plan`` itself uses: revisions
carrying traffic or a tag, and the newest unless rolled back). Nothing is decided here:
the rest are untracked (the controller scales them to zero after its retire grace). A
revision's ready replicas are the ``status.readyReplicas`` the operator writes from its
Deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from fnmesh.platform.controller.plan import active_revisions
from fnmesh.platform.model import Function, Revision
from fnmesh.platform.model.errors import ValidationError
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.store import Expired, Store

log = logging.getLogger("fnmesh.cluster.follow")
Key = tuple[str, str]
Obj = dict[str, Any]
KINDS = frozenset({"Function", "Revision"})


class Sizer(Protocol):
    async def track(self, revision: Revision) -> None: ...

    async def untrack(self, namespace: str, name: str) -> None: ...


def ready_replicas(revision: Obj) -> int:
    ready = (revision.get("status") or {}).get("readyReplicas")
    return ready if isinstance(ready, int) and not isinstance(ready, bool) and ready > 0 else 0


class RevisionFollower:
    """Follows the store; tells ``sizer`` what to track (see the module's docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.functions: dict[Key, Obj] = {}
        self.revisions: dict[Key, Obj] = {}
        self.tracked: set[Key] = set()
        self.synced = asyncio.Event()
        self._sizer: Sizer | None = None
        self._task: asyncio.Task[None] | None = None

    def ready(self, namespace: str, revision: str) -> int:
        """Ready replicas of a revision (the autoscaler's ``ReadyCount``)."""
        found = self.revisions.get((namespace, revision))
        return ready_replicas(found) if found is not None else 0

    def start(self, sizer: Sizer) -> None:
        self._sizer = sizer
        self._task = asyncio.create_task(self._follow(), name="autoscaler revisions")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            version = await asyncio.to_thread(self._load)
            for key in list(self.functions):
                await self.reconcile(*key)
            for key in list(self.tracked):
                if key not in self.revisions:
                    await self._untrack(key)
            self.synced.set()
            try:
                async for event in self.store.watch(KINDS, version):
                    await self.apply(event.kind, event.type, event.object)
            except Expired:
                continue

    def _load(self) -> int:
        versions = []
        loaded: dict[str, dict[Key, Obj]] = {}
        for kind in ("Function", "Revision"):
            items, version = self.store.list(kind)
            versions.append(version)
            loaded[kind] = {_key(item): item for item in items}
        self.functions, self.revisions = loaded["Function"], loaded["Revision"]
        return min(versions)

    async def apply(self, kind: str, event: str, obj: Obj) -> None:
        """Take one change from the store, then reconcile the function it concerns."""
        key = _key(obj)
        where = self.functions if kind == "Function" else self.revisions
        if event == "DELETED":
            where.pop(key, None)
        else:
            where[key] = obj
        function = key[1] if kind == "Function" else _owner(obj)
        if function:
            await self.reconcile(key[0], function)
        if kind == "Revision" and event == "DELETED" and key in self.tracked:
            await self._untrack(key)

    async def reconcile(self, namespace: str, name: str) -> None:
        """Track the function's active revisions, untrack its others."""
        raw = self.functions.get((namespace, name))
        owned = {
            key: body
            for key, body in self.revisions.items()
            if key[0] == namespace and _owner(body) == name
        }
        active: set[str] = set()
        revisions: dict[str, Revision] = {}
        try:
            for key, body in owned.items():
                revisions[key[1]] = Revision.from_dict(body)
            if raw is not None:
                status = Function.from_dict(raw).status
                active = set(active_revisions(status, list(revisions.values())))
        except (ValidationError, ValueError, KeyError) as error:
            log.warning("function %s/%s cannot be sized: %s", namespace, name, error)
            return
        for revision_name, revision in revisions.items():
            key = (namespace, revision_name)
            if revision_name in active:
                await self._track(key, revision)
            elif key in self.tracked:
                await self._untrack(key)

    async def _track(self, key: Key, revision: Revision) -> None:
        assert self._sizer is not None
        self.tracked.add(key)
        try:
            await self._sizer.track(revision)
        except Exception:  # the cluster refused a scale: the next tick tries again
            log.exception("sizing revision %s/%s failed", *key)

    async def _untrack(self, key: Key) -> None:
        assert self._sizer is not None
        self.tracked.discard(key)
        await self._sizer.untrack(*key)


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name"))


def _owner(revision: Obj) -> str | None:
    meta = revision.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(LABEL_FUNCTION) or (revision.get("spec") or {}).get(
        "function"
    )
    return str(owner) if owner else None
