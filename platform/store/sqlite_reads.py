"""The embedded store read from worker threads, for a loop that must never wait on SQLite.

``SqliteStore`` runs on the event loop's thread and shares one connection between its
reads and writes; a read there can take milliseconds while the disk is busy. A reader
that must not stall its loop (the gateway's route table) uses ``SqliteReads`` instead: a
connection of its own, read-only, used from worker threads one call at a time. In WAL
mode it sees every committed write and never waits for a writer, nor a writer for it.

``list`` blocks (call it in a thread); ``watch`` is the store's change feed with its
queries and JSON decoding run in a thread of the reader's own (never queued behind other
work in the loop's default executor), woken at once by the store's writes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fnmesh.platform.store.errors import Expired
from fnmesh.platform.store.events import Event
from fnmesh.platform.store.sqlite import SqliteStore, current_version, select_objects

Obj = dict[str, Any]
BATCH = 500


class SqliteReads:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._db = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA query_only=1")
        self._lock = threading.Lock()
        # a thread of its own: a busy default executor (builds, file removals) never
        # delays the feed
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="store reads")

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._db.close()

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], int]:
        """Objects of ``kind`` and the version to watch from (blocking: run in a thread)."""
        with self._lock, self._snapshot():
            return select_objects(self._db, kind, namespace, labels)

    async def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        """Every change to ``kinds`` after ``since``, in order, forever (Expired when the
        store no longer keeps them); reads run in a worker thread."""
        last = since
        while True:
            wakeup = self.store.wakeup()  # before reading: a write during the read sets it
            loop = asyncio.get_running_loop()
            read_to, events = await loop.run_in_executor(self._thread, self._changes, kinds, last)
            for event in events:
                yield event
            if read_to == last:
                await wakeup.wait()
            last = read_to

    def _changes(self, kinds: frozenset[str], last: int) -> tuple[int, tuple[Event, ...]]:
        """The changes after ``last`` (a batch at most) and the version read up to."""
        with self._lock, self._snapshot():
            oldest = self._db.execute("SELECT MIN(rv) FROM events").fetchone()[0]
            if oldest is not None and last + 1 < oldest and last < self._version():
                raise Expired(f"changes after {last} are no longer kept; list and watch again")
            rows = self._db.execute(
                "SELECT rv, kind, type, body FROM events WHERE rv > ? ORDER BY rv LIMIT ?",
                (last, BATCH),
            ).fetchall()
        events = tuple(
            Event(change, kind, json.loads(body), rv)
            for rv, kind, change, body in rows
            if kind in kinds
        )
        return (rows[-1][0] if rows else last), events

    def _version(self) -> int:
        return current_version(self._db)

    def _snapshot(self) -> _ReadTransaction:
        return _ReadTransaction(self._db)


class _ReadTransaction:
    """One consistent view of the file for a few queries."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, *_: object) -> None:
        self.db.execute("COMMIT")
