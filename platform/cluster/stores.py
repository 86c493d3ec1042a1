"""The store as the platform's components use it on a cluster: ``KubernetesStore``, plus two
differences between a cluster and one machine.

- Tokens: the API keeps its Token objects in the namespace ``fnmesh-system`` (see
  ``api.auth``); on a cluster they live in the chart's own namespace, the only one the
  API may keep tokens in, so ``ClusterStore`` moves them there and back.
- Namespaces: with ``rbac.namespaces`` set, a component may read functions only in the
  listed namespaces, never cluster-wide. A list or watch of every namespace then becomes
  one per listed namespace, merged (the smallest resource version of the lists is the
  one to watch from).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fnmesh.platform.mesh.identity.names import SYSTEM_NAMESPACE
from fnmesh.platform.store.events import Event
from fnmesh.platform.store.kubernetes import (
    KubeClient,
    KubernetesStore,
    Resource,
    platform_resources,
)

Obj = dict[str, Any]
TOKEN = "Token"


@dataclass(frozen=True, slots=True)
class PinnedResource(Resource):
    """A resource whose list and watch, without a namespace, stay in ``pinned``."""

    pinned: str = ""

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        return Resource.path(self, namespace or self.pinned, name, subresource)


def pinned_resources(split_api_version: str, namespace: str) -> dict[str, Resource]:
    """The store's resources, listed and watched in ``namespace`` only."""
    return {
        kind: PinnedResource(
            r.group, r.version, r.plural, r.kind, r.namespaced, r.status, pinned=namespace
        )
        for kind, r in platform_resources(split_api_version).items()
    }


class ClusterStore:
    """The Store protocol over one cluster (see the module's docstring)."""

    def __init__(
        self,
        client: KubeClient,
        *,
        split_api_version: str = "split.smi-spec.io/v1alpha4",
        platform_namespace: str = SYSTEM_NAMESPACE,
        namespaces: Sequence[str] = (),
        retry_delay: float = 1.0,
    ) -> None:
        self.platform_namespace = platform_namespace
        self.main = KubernetesStore(
            client, resources=platform_resources(split_api_version), retry_delay=retry_delay
        )
        self.scoped = [
            KubernetesStore(
                client,
                resources=pinned_resources(split_api_version, namespace),
                retry_delay=retry_delay,
            )
            for namespace in dict.fromkeys(namespaces)
        ]

    def close(self) -> None:
        self.main.close()  # the scoped stores share its client

    # -- tokens live in the platform's namespace -------------------------------------------

    def _namespace(self, kind: str, namespace: str | None) -> str | None:
        if kind == TOKEN and namespace == SYSTEM_NAMESPACE:
            return self.platform_namespace
        return namespace

    def _outward(self, obj: Obj) -> Obj:
        if obj.get("kind") == TOKEN:
            obj.setdefault("metadata", {})["namespace"] = SYSTEM_NAMESPACE
        return obj

    def _inward(self, obj: Obj) -> Obj:
        if obj.get("kind") != TOKEN:
            return obj
        body = copy.deepcopy(obj)
        meta = body.setdefault("metadata", {})
        meta["namespace"] = self._namespace(TOKEN, meta.get("namespace") or SYSTEM_NAMESPACE)
        return body

    # -- the Store protocol ------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        found = self.main.get(kind, self._namespace(kind, namespace) or namespace, name)
        return self._outward(found)

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], int]:
        if namespace is not None or not self.scoped or kind == TOKEN:
            items, version = self.main.list(kind, self._namespace(kind, namespace), labels)
            return [self._outward(item) for item in items], version
        found: list[Obj] = []
        versions = []
        for store in self.scoped:
            items, version = store.list(kind, None, labels)
            found += items
            versions.append(version)
        found.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return found, min(versions)

    def create(self, obj: Obj) -> Obj:
        return self._outward(self.main.create(self._inward(obj)))

    def update(self, obj: Obj) -> Obj:
        return self._outward(self.main.update(self._inward(obj)))

    def update_status(self, obj: Obj) -> Obj:
        return self._outward(self.main.update_status(self._inward(obj)))

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        gone = self.main.delete(kind, self._namespace(kind, namespace) or namespace, name)
        return self._outward(gone)

    def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        if not self.scoped:
            return self.main.watch(kinds, since)
        return merged([store.watch(kinds, since) for store in self.scoped])


async def merged(feeds: list[AsyncIterator[Event]]) -> AsyncIterator[Event]:
    """The events of every feed as they come; the first failure of any ends them all."""
    queue: asyncio.Queue[Event | Exception] = asyncio.Queue()

    async def pump(feed: AsyncIterator[Event]) -> None:
        try:
            async for event in feed:
                await queue.put(event)
        except Exception as error:
            await queue.put(error)

    tasks = [asyncio.create_task(pump(feed), name="watch") for feed in feeds]
    try:
        while True:
            item = await queue.get()
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
