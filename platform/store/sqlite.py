"""The embedded store: one SQLite file in WAL mode.

Objects live in ``objects``; every write also appends to ``events`` under a single,
monotonic counter that is the resourceVersion of what it wrote, so a watcher that
remembers the last version it saw resumes exactly where it stopped -- across restarts too.
The feed keeps the last ``keep_events`` entries; an older ``since`` raises Expired.

All calls are synchronous and short (microseconds to a millisecond); they run on the
event loop's thread. Writers in this process wake watchers at once. A reader that must
never wait on SQLite on its loop reads through ``sqlite_reads.SqliteReads`` instead.

A write that SQLite cannot complete (``database or disk is full``, ``disk I/O error``) is
rolled back whole and raises ``StoreUnavailable``: the connection is never left inside
a transaction, so the same write succeeds once space is back. Retrying is the caller's
business -- the supervised loops (``fnmesh.platform.supervise``) do it with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fnmesh.platform.store.errors import Conflict, Expired, NotFound, StoreUnavailable
from fnmesh.platform.store.events import Event, EventType

Obj = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SqliteStore:
    def __init__(
        self, path: Path, *, keep_events: int = 10_000, now: Callable[[], str] = _utc_now
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._keep = keep_events
        self._now = now
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._wakeup: asyncio.Event | None = None
        self._writes = 0

    def close(self) -> None:
        self._db.close()

    # -- reads -------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        row = self._db.execute(
            "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
            (kind, namespace, name),
        ).fetchone()
        if row is None:
            raise NotFound(f"{kind} {namespace}/{name} not found")
        body: Obj = json.loads(row[0])
        return body

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], int]:
        self._db.execute("BEGIN")
        try:
            return select_objects(self._db, kind, namespace, labels)
        finally:
            self._db.execute("COMMIT")

    def version(self) -> int:
        return self._version()

    def _version(self) -> int:
        return current_version(self._db)

    # -- writes ------------------------------------------------------------------------

    def create(self, obj: Obj) -> Obj:
        kind, namespace, name = _key(obj)
        with self._transaction():
            exists = self._db.execute(
                "SELECT 1 FROM objects WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            ).fetchone()
            if exists:
                raise Conflict(f"{kind} {namespace}/{name} already exists")
            body = json.loads(json.dumps(obj))
            meta = body["metadata"]
            meta["uid"] = str(uuid.uuid4())
            meta["generation"] = 1
            meta["creationTimestamp"] = self._now()
            body.setdefault("status", {})
            return self._write(body, "ADDED")

    def update(self, obj: Obj) -> Obj:
        return self._replace(obj, status_only=False)

    def update_status(self, obj: Obj) -> Obj:
        return self._replace(obj, status_only=True)

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        with self._transaction():
            current = self.get(kind, namespace, name)
            self._db.execute(
                "DELETE FROM objects WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace, name),
            )
            rv = self._append(kind, "DELETED", current)
            current["metadata"]["resourceVersion"] = str(rv)
            return current

    def _replace(self, obj: Obj, *, status_only: bool) -> Obj:
        kind, namespace, name = _key(obj)
        with self._transaction():
            current = self.get(kind, namespace, name)
            wanted = obj["metadata"].get("resourceVersion")
            have = current["metadata"]["resourceVersion"]
            if wanted is not None and str(wanted) != have:
                raise Conflict(
                    f"{kind} {namespace}/{name} was changed by someone else (resourceVersion "
                    f"{wanted} is stale, now {have}): read it again and retry"
                )
            body = json.loads(json.dumps(current))
            if status_only:
                body["status"] = json.loads(json.dumps(obj.get("status") or {}))
            else:
                incoming = json.loads(json.dumps(obj))
                meta = body["metadata"]
                for field in ("labels", "annotations", "ownerReferences", "finalizers"):
                    if field in incoming["metadata"]:
                        meta[field] = incoming["metadata"][field]
                if incoming.get("spec") != current.get("spec"):
                    meta["generation"] = int(meta.get("generation", 1)) + 1
                body["spec"] = incoming.get("spec")
            if body == current:
                return current
            return self._write(body, "MODIFIED")

    def _write(self, body: Obj, event: EventType) -> Obj:
        kind, namespace, name = _key(body)
        rv = self._next_version()
        body["metadata"]["resourceVersion"] = str(rv)
        text = json.dumps(body, separators=(",", ":"))
        self._db.execute(
            "INSERT OR REPLACE INTO objects (kind, namespace, name, rv, body) VALUES (?,?,?,?,?)",
            (kind, namespace, name, rv, text),
        )
        self._db.execute(
            "INSERT INTO events (rv, kind, type, body) VALUES (?,?,?,?)", (rv, kind, event, text)
        )
        return body

    def _append(self, kind: str, event: EventType, body: Obj) -> int:
        rv = self._next_version()
        body = dict(body, metadata=dict(body["metadata"], resourceVersion=str(rv)))
        self._db.execute(
            "INSERT INTO events (rv, kind, type, body) VALUES (?,?,?,?)",
            (rv, kind, event, json.dumps(body, separators=(",", ":"))),
        )
        return rv

    def _next_version(self) -> int:
        rv = self._version() + 1
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(rv),))
        return rv

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def _committed(self) -> None:
        self._writes += 1
        if self._writes % 500 == 0:
            self._db.execute(
                "DELETE FROM events WHERE rv <= (SELECT MAX(rv) FROM events) - ?", (self._keep,)
            )
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    # -- the change feed ---------------------------------------------------------------

    def wakeup(self) -> asyncio.Event:
        """Set when this store next commits a write: what a watcher waits on once it has
        read every change (``SqliteReads`` too). Call it on the loop the writes run on."""
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        return self._wakeup

    async def watch(self, kinds: frozenset[str], since: int) -> AsyncIterator[Event]:
        last = since
        while True:
            wakeup = self.wakeup()
            oldest = self._db.execute("SELECT MIN(rv) FROM events").fetchone()[0]
            if oldest is not None and last + 1 < oldest and last < self._version():
                raise Expired(f"changes after {last} are no longer kept; list and watch again")
            rows = self._db.execute(
                "SELECT rv, kind, type, body FROM events WHERE rv > ? ORDER BY rv LIMIT 500",
                (last,),
            ).fetchall()
            for rv, kind, kind_event, body in rows:
                last = rv
                if kind in kinds:
                    yield Event(kind_event, kind, json.loads(body), rv)
            if not rows:
                await wakeup.wait()


class _Transaction:
    """One write: committed whole, or rolled back whole (also when COMMIT fails)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self._rollback()  # whatever an earlier failure left open
        try:
            self.store._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise self._unavailable(error) from error

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        db = self.store._db
        if kind is None:
            try:
                db.execute("COMMIT")
            except sqlite3.Error as error:
                self._rollback()
                raise self._unavailable(error) from error
            with contextlib.suppress(sqlite3.Error):  # trimming the feed can wait
                self.store._committed()
            return
        self._rollback()
        if isinstance(value, sqlite3.OperationalError):
            raise self._unavailable(value) from value

    def _rollback(self) -> None:
        if self.store._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.store._db.execute("ROLLBACK")

    def _unavailable(self, error: sqlite3.Error) -> StoreUnavailable:
        return StoreUnavailable(
            f"the store {self.store.path} could not write ({error}): nothing was written; "
            "free disk space (or fix the disk) and it is retried"
        )


def select_objects(
    db: sqlite3.Connection, kind: str, namespace: str | None, labels: dict[str, str] | None
) -> tuple[list[Obj], int]:
    """Objects of ``kind`` (in ``namespace``, with ``labels``) and the version they are
    at; the caller holds a read transaction, so the two agree."""
    if namespace is None:
        rows = db.execute(
            "SELECT body FROM objects WHERE kind=? ORDER BY namespace, name", (kind,)
        ).fetchall()
    else:
        rows = db.execute(
            "SELECT body FROM objects WHERE kind=? AND namespace=? ORDER BY name",
            (kind, namespace),
        ).fetchall()
    version = current_version(db)
    items = [json.loads(row[0]) for row in rows]
    if labels:
        items = [o for o in items if _matches(o, labels)]
    return items, version


def current_version(db: sqlite3.Connection) -> int:
    """The newest resource version of the file (events may have been pruned below it)."""
    row = db.execute("SELECT MAX(rv) FROM events").fetchone()
    floor = db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
    return max(int(row[0] or 0), int(floor[0]) if floor else 0)


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj["kind"]), str(meta.get("namespace") or "default"), str(meta["name"])


def _matches(obj: Obj, labels: dict[str, str]) -> bool:
    have = obj.get("metadata", {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())
