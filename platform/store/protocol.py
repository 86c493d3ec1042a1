"""The interface every store backend offers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from fnmesh.platform.store.events import Event

Obj = dict[str, Any]


class Store(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> Obj: ...

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], int]:
        """Objects of ``kind`` and the resource version to start a watch from."""
        ...

    def create(self, obj: Obj) -> Obj: ...

    def update(self, obj: Obj) -> Obj:
        """Replace metadata and spec; refused when metadata.resourceVersion is stale."""
        ...

    def update_status(self, obj: Obj) -> Obj:
        """Replace status only; refused when metadata.resourceVersion is stale."""
        ...

    def delete(self, kind: str, namespace: str, name: str) -> Obj: ...

    def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        """Every change to ``kinds`` after resource version ``since``, in order, forever."""
        ...
