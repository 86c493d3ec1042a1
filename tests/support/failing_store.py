"""A store whose writes fail while ``full`` is set, as SQLite's do on a full disk."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from fnmesh.platform.store import Event, Store

Obj = dict[str, Any]


class FailingStore:
    """Wraps a store; every write raises ``sqlite3.OperationalError`` while ``full``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.full = False
        self.refused = 0

    def _check(self) -> None:
        if self.full:
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        return self.inner.get(kind, namespace, name)

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], int]:
        return self.inner.list(kind, namespace, labels)

    def create(self, obj: Obj) -> Obj:
        self._check()
        return self.inner.create(obj)

    def update(self, obj: Obj) -> Obj:
        self._check()
        return self.inner.update(obj)

    def update_status(self, obj: Obj) -> Obj:
        self._check()
        return self.inner.update_status(obj)

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        self._check()
        return self.inner.delete(kind, namespace, name)

    def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        return self.inner.watch(kinds, since)
