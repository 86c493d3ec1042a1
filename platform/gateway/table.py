"""The gateway's routing table, kept in step with the store.

It follows Functions (existence, visibility, traffic tags from their status),
TrafficSplits (revision weights) and Revisions (ready replicas) and keeps, per function,
an immutable ``Routes`` snapshot that the hot path reads without locks. A tagged
revision has endpoints in the snapshot whatever its weight.

The table never waits on its store on the gateway's event loop: the lists of a (re)sync
run in a worker thread, and the change feed must do its reads off the loop too (the
Kubernetes store watches in threads; the embedded platform gives the table
``SqliteReads``, whose queries run in a worker thread). What requests read is in memory.

A ready replica is reached at the ``address`` of its status entry: the inbound mTLS
address of the proxy beside it once the runtime launches proxies. It must prove the
revision's identity, ``<serviceAccount>.<namespace>.serviceaccount.identity.<domain>``
with the revision's ``serviceAccount`` (its function's name when unset).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fnmesh.platform.mesh.identity.names import identity_name
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.model.traffic import split_weights
from fnmesh.platform.store import Event, Expired
from fnmesh.platform.supervise import Supervised, TaskBoard

Key = tuple[str, str]
KINDS = ("Function", "TrafficSplit", "Revision")


class Feed(Protocol):
    """What the table reads of a store: a blocking list (run in a worker thread) and a
    change feed whose reads do not block the loop."""

    def list(self, kind: str) -> tuple[list[dict[str, Any]], int]: ...

    def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    host: str
    port: int
    identity: str | None = None  # the identity the replica's certificate must name


@dataclass(frozen=True, slots=True)
class Routes:
    namespace: str
    function: str
    visibility: str
    backends: tuple[tuple[str, int], ...] = ()
    endpoints: dict[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    timeout: float = 30.0
    concurrency: dict[str, int] = field(default_factory=dict)  # per revision; 0 = no limit
    tags: dict[str, str] = field(default_factory=dict)  # tag -> revision


class RouteTable:
    def __init__(self, store: Feed, *, tasks: TaskBoard | None = None) -> None:
        self.store = store
        self.tasks = tasks if tasks is not None else TaskBoard()
        self.routes: dict[Key, Routes] = {}
        self._functions: dict[Key, dict[str, Any]] = {}
        self._splits: dict[Key, tuple[tuple[str, int], ...]] = {}
        self._revisions: dict[Key, dict[str, Any]] = {}
        self._task: Supervised | None = None
        self._listeners: list[Callable[[str, str], None]] = []
        self.synced = asyncio.Event()

    def get(self, namespace: str, function: str) -> Routes | None:
        return self.routes.get((namespace, function))

    def ready_replicas(self, namespace: str, function: str, revision: str) -> int:
        """Ready replicas of ``function``'s ``revision`` by its own status, whatever its
        weight: a request admitted for a revision that then left the split is still
        forwarded to it (``Gateway._activate``), so its capacity must not drop to zero."""
        body = self._revisions.get((namespace, revision))
        if body is None or _owner(body) != function:
            return 0
        return len(_ready_endpoints(body))

    def endpoints_of(self, namespace: str, revision: str) -> tuple[Endpoint, ...]:
        """The ready replicas of any revision known, in the split or not."""
        body = self._revisions.get((namespace, revision))
        return _ready_endpoints(body) if body else ()

    def listen(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(namespace, function)`` after that function's routes change."""
        self._listeners.append(callback)

    def start(self) -> None:
        self._task = self.tasks.start("gateway routes", self._follow)

    async def close(self) -> None:
        if self._task is not None:
            await self._task.stop()

    async def _follow(self) -> None:
        while True:
            listed = await asyncio.to_thread(self._list)  # the store may be slow: not here
            version = self._load(listed)
            self.synced.set()
            try:
                async for event in self.store.watch(frozenset(KINDS), version):
                    self._apply(event.kind, event.type, event.object)
            except Expired:
                continue

    def _list(self) -> list[tuple[str, list[dict[str, Any]], int]]:
        """Every object the table follows, listed kind by kind (in a worker thread)."""
        return [(kind, *self.store.list(kind)) for kind in KINDS]

    def _load(self, listed: list[tuple[str, list[dict[str, Any]], int]]) -> int:
        self._functions.clear()
        self._splits.clear()
        self._revisions.clear()
        for kind, items, _ in listed:
            for item in items:
                self._remember(kind, "ADDED", item)
        before, self.routes = self.routes, {key: self._build(key) for key in self._functions}
        if self.synced.is_set():  # a sync again (the feed expired): anything may have changed
            for key in before.keys() | self.routes.keys():
                for listener in self._listeners:
                    listener(*key)
        # watch from the oldest list: a change made between two lists is replayed, not lost
        return min(version for _, _, version in listed)

    def _apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        for key in self._remember(kind, event, obj):
            if key in self._functions:
                self.routes[key] = self._build(key)
            else:
                self.routes.pop(key, None)
            for listener in self._listeners:
                listener(*key)

    def _remember(self, kind: str, event: str, obj: dict[str, Any]) -> Iterable[Key]:
        meta = obj["metadata"]
        key = (meta.get("namespace", "default"), meta["name"])
        gone = event == "DELETED"
        if kind == "Function":
            self._store(self._functions, key, None if gone else obj)
            return [key]
        if kind == "TrafficSplit":
            self._store(self._splits, key, None if gone else tuple(split_weights(obj)))
            return [key]
        self._store(self._revisions, key, None if gone else obj)
        owner = _owner(obj)
        return [(key[0], owner)] if owner else []

    @staticmethod
    def _store(where: dict[Key, Any], key: Key, value: Any) -> None:
        if value is None:
            where.pop(key, None)
        else:
            where[key] = value

    def _build(self, key: Key) -> Routes:
        function = self._functions[key]
        spec = function.get("spec") or {}
        backends = self._splits.get(key, ())
        tags = _tags(function)
        endpoints: dict[str, tuple[Endpoint, ...]] = {}
        concurrency: dict[str, int] = {}
        for revision in dict.fromkeys([*(name for name, _ in backends), *tags.values()]):
            body = self._revisions.get((key[0], revision))
            endpoints[revision] = _ready_endpoints(body) if body else ()
            concurrency[revision] = int(((body or {}).get("spec") or {}).get("concurrency", 0))
        return Routes(
            namespace=key[0],
            function=key[1],
            visibility=str(spec.get("visibility", "public")),
            backends=backends,
            endpoints=endpoints,
            timeout=float(spec.get("timeout", 30.0)),
            concurrency=concurrency,
            tags=tags,
        )


def _owner(revision: dict[str, Any]) -> str | None:
    """The function a revision belongs to (its label)."""
    owner = ((revision.get("metadata") or {}).get("labels") or {}).get(LABEL_FUNCTION)
    return str(owner) if owner else None


def _tags(function: dict[str, Any]) -> dict[str, str]:
    traffic = (function.get("status") or {}).get("traffic") or []
    return {
        str(t["tag"]): str(t["revision"])
        for t in traffic
        if isinstance(t, dict) and t.get("tag") and t.get("revision")
    }


def _ready_endpoints(revision: dict[str, Any]) -> tuple[Endpoint, ...]:
    identity = revision_identity(revision)
    found = []
    for replica in (revision.get("status") or {}).get("replicas") or []:
        address = replica.get("address")
        if replica.get("ready") and address:
            host, _, port = str(address).rpartition(":")
            host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            found.append(Endpoint(str(replica["name"]), host, int(port), identity))
    return tuple(found)


def revision_identity(revision: dict[str, Any]) -> str | None:
    """The identity a revision's replicas run as; None when its names make none."""
    meta = revision.get("metadata") or {}
    spec = revision.get("spec") or {}
    account = (
        spec.get("serviceAccount")
        or spec.get("function")
        or (meta.get("labels") or {}).get(LABEL_FUNCTION)
    )
    if not account:
        return None
    try:
        return identity_name(str(account), str(meta.get("namespace", "default")))
    except ValueError:
        return None  # an mTLS client refuses such an endpoint rather than guess
