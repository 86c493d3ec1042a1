"""The controller's driver: the one place that runs ``plan`` and applies it, in both modes.

Level-triggered: something says a function may need work (a change in the store's feed,
a kopf handler, the periodic resync, a due rollout step); reconciling reads the current
state, asks ``plan`` what to do, and applies it -- create the next revision, write the
TrafficSplit and the function's status, tell the runtime how many replicas each revision
needs, delete revisions past the function's limit. A write that loses a race (409)
requeues the function. A revision that has lost its traffic keeps its replicas for
``retire_grace`` seconds before it is scaled to zero, so requests the gateway chose it for
just before (or that wait in the activator) still find a replica. A function whose canary
rollout is in progress is queued again when its next check is due; the check reads the
canary's metrics over the last interval from ``metrics``. Any other failure (a store that
cannot write) is reported to the task board and the function is queued again after the
board's backoff, so its status converges once the cause is gone.

The two modes differ only behind the protocols below:

=================  ===============================  ==================================
                   embedded (``fn up``)              Kubernetes (the operator)
=================  ===============================  ==================================
``Store``          SQLite                           custom resources
``Scaler``         the local supervisor             Deployments
``Sizer``          the autoscaler, in process       None: the autoscaler follows status
``Exposure``       None                             account, apex Service, SMI access
``Metrics``        the telemetry hub                the hub over HTTP, or None
feeding            the store's change feed          kopf's handlers
=================  ===============================  ==================================

Both run the worker and may run a periodic ``resync`` (every function queued again).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fnmesh.platform.controller.collect import DEFAULT_KEEP
from fnmesh.platform.controller.plan import Plan, plan
from fnmesh.platform.controller.rollout import Sample, is_due
from fnmesh.platform.model import Function, Revision, TrafficTarget
from fnmesh.platform.model.resources import API_VERSION, LABEL_FUNCTION, RolloutStatus
from fnmesh.platform.model.traffic import make_traffic_split, weights_of
from fnmesh.platform.store import Conflict, Expired, NotFound, Store
from fnmesh.platform.supervise import Supervised, TaskBoard

log = logging.getLogger("fnmesh.controller")
Key = tuple[str, str]
Obj = dict[str, Any]
T = TypeVar("T")


class Scaler(Protocol):
    """Where replicas run: a revision's replicas (local processes | a Deployment)."""

    async def scale(self, revision: Revision, replicas: int) -> None: ...

    async def remove(self, namespace: str, revision: str) -> None: ...


class Sizer(Protocol):
    """The autoscaler: sizes the revisions it tracks."""

    async def track(self, revision: Revision) -> None: ...

    async def untrack(self, namespace: str, name: str) -> None: ...


class Exposure(Protocol):
    """What a function needs besides its revisions' replicas and its TrafficSplit (on a
    cluster: its ServiceAccount, apex Service and SMI access policy)."""

    async def expose(self, function: Function) -> None: ...

    async def withdraw(self, namespace: str, name: str) -> None: ...


class Metrics(Protocol):
    """Request outcomes per revision (the telemetry hub's golden metrics)."""

    def golden(self, namespace: str, revision: str, window: float) -> Sample | None: ...


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Read:
    """What one reconcile read: the function (None when gone) and its revisions."""

    function: Function | None
    deleting: bool
    revisions: list[Revision]
    samples: dict[str, Sample]
    clock: float


class Controller:
    def __init__(
        self,
        store: Store,
        scaler: Scaler,
        sizer: Sizer | None,
        *,
        url_for: Callable[[str, str], str],
        now: Callable[[], str] = _now,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        keep_revisions: int = DEFAULT_KEEP,
        retire_grace: float = 5.0,
        exposure: Exposure | None = None,
        blocking_store: bool = False,
        tasks: TaskBoard | None = None,
    ) -> None:
        """``blocking_store``: store and metrics calls block (HTTP to an API server), so
        they run in threads; SQLite's stay on the loop (its connection is per thread)."""
        self.store = store
        self.scaler = scaler
        self.sizer = sizer
        self.exposure = exposure
        self.url_for = url_for
        self.now = now
        self.metrics = metrics
        self.clock = clock
        self.keep_revisions = keep_revisions
        self.retire_grace = retire_grace
        self.blocking_store = blocking_store
        self._retiring: dict[Key, float] = {}  # (namespace, revision) -> first seen inactive
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: set[Key] = set()
        self._locks: dict[Key, asyncio.Lock] = {}
        self.tasks = tasks if tasks is not None else TaskBoard()
        self._tasks: list[Supervised] = []
        self._worker: Supervised | None = None
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failing: set[Key] = set()

    def start(
        self,
        *,
        follow: bool = True,
        resync: float | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        """Start the worker; ``follow`` the store's change feed (else someone else calls
        ``enqueue`` or ``reconcile``); every ``resync`` seconds, queue every function (of
        ``namespaces`` when given: a cluster may let the operator list only those)."""
        self._worker = self.tasks.start("controller worker", self._work)
        self._tasks = [self._worker]
        if follow:
            self._tasks.append(self.tasks.start("controller watch", self._follow))
        if resync is not None:
            every, scope = resync, tuple(namespaces) or (None,)
            self._tasks.append(
                self.tasks.start("controller resync", lambda: self._resync(every, scope))
            )

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            await task.stop()
        self._tasks = []

    def enqueue(self, key: Key) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    async def _follow(self) -> None:
        while True:
            functions, version = await self._io(self.store.list, "Function")
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

    async def _resync(self, every: float, namespaces: tuple[str | None, ...]) -> None:
        """Queue every function now and then: a missed event costs one period at most."""
        while True:
            await asyncio.sleep(every)
            for namespace in namespaces:
                functions, _ = await self._io(self.store.list, "Function", namespace)
                for item in functions:
                    self.enqueue((item["metadata"]["namespace"], item["metadata"]["name"]))

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            try:
                await self.reconcile(*key)
            except Conflict:
                self.enqueue(key)
            except Exception as error:
                self._failed(key, error)
            else:
                self._failing.discard(key)
                if not self._failing and self._worker is not None:
                    self._worker.recovered()

    def _failed(self, key: Key, error: Exception) -> None:
        """Report the failure and try the function again after the board's backoff."""
        self._failing.add(key)
        what = f"reconciling function {key[0]}/{key[1]}"
        delay = self._worker.failed(error, what) if self._worker else self.tasks.delay(1)
        log.exception("%s failed (again in %.1f s)", what, delay)
        self._requeue(key, delay)

    async def _io(self, call: Callable[..., T], *args: Any) -> T:
        if self.blocking_store:
            return await asyncio.to_thread(call, *args)
        return call(*args)

    # -- one function --------------------------------------------------------------------

    async def reconcile(self, namespace: str, name: str) -> None:
        """Bring one function to what ``plan`` says; raises what the store refused (the
        caller retries). One reconcile of a function at a time, whoever asks."""
        key = (namespace, name)
        async with self._locks.setdefault(key, asyncio.Lock()):
            read = await self._io(self._read, namespace, name)
            if read.function is None:
                await self._cleanup(namespace, name, read.revisions)
                self._locks.pop(key, None)
                return
            if read.deleting:
                return  # deleted in the foreground: nothing of it is made again
            wait = await self._apply(read.function, read)
        self._requeue(key, wait)

    def _read(self, namespace: str, name: str) -> _Read:
        revisions = [
            Revision.from_dict(o)
            for o in self.store.list("Revision", namespace, {LABEL_FUNCTION: name})[0]
        ]
        clock = self.clock()
        try:
            raw = self.store.get("Function", namespace, name)
        except NotFound:
            return _Read(None, False, revisions, {}, clock)
        function = Function.from_dict(raw)
        deleting = bool(raw["metadata"].get("deletionTimestamp"))
        return _Read(function, deleting, revisions, self._samples(function, clock), clock)

    async def _apply(self, function: Function, read: _Read) -> float | None:
        """Write what ``plan`` decided; the seconds until the function wants another look."""
        revisions = read.revisions
        namespace = function.namespace
        decided = plan(
            function,
            revisions,
            url=self.url_for(namespace, function.name),
            now=self.now(),
            clock=read.clock,
            samples=read.samples,
            keep=self.keep_revisions,
        )
        if self.exposure is not None:  # first: a revision's replicas run as its account
            await self.exposure.expose(function)
        by_name = {r.name: r for r in revisions}
        created = await self._io(self._write, function, decided)
        if created is not None:
            by_name[created.name] = created
        for revision in decided.active:
            self._retiring.pop((namespace, revision), None)
            if self.sizer is not None:
                await self.sizer.track(by_name[revision])
        waits = [] if decided.requeue_after is None else [decided.requeue_after]
        now = self.clock()
        for revision in [*decided.inactive, *decided.delete]:
            since = self._retiring.setdefault((namespace, revision), now)
            if since + self.retire_grace > now:
                waits.append(since + self.retire_grace - now)  # it keeps its replicas a while
        for revision in decided.inactive:
            if self._retiring[(namespace, revision)] + self.retire_grace > now:
                continue
            if self.sizer is not None:
                await self.sizer.untrack(namespace, revision)
            await self.scaler.scale(by_name[revision], 0)
        for revision in decided.delete:
            if self._retiring[(namespace, revision)] + self.retire_grace > now:
                continue
            self._retiring.pop((namespace, revision), None)
            await self._remove(namespace, revision)
            log.info("revision %s/%s deleted (past the revision limit)", namespace, revision)
        return min(waits) if waits else None

    def _write(self, function: Function, decided: Plan) -> Revision | None:
        """The store's part of a plan: the new revision, the split, the function's status."""
        created: Revision | None = None
        if decided.create is not None:
            body = decided.create.to_dict()
            body.pop("status", None)
            body["metadata"].update(_owned_by(function))
            created = Revision.from_dict(self.store.create(body))
            log.info("revision %s/%s stamped", function.namespace, created.name)
        self._write_split(function, decided.traffic)
        if decided.status != function.status:
            self.store.update_status(function.with_status(decided.status).to_dict())
            _log_rollout(function, decided.status.rollout)
        return created

    def _samples(self, function: Function, clock: float) -> dict[str, Sample]:
        """The canary's metrics over the last interval, when its rollout's check is due."""
        state = function.status.rollout
        if self.metrics is None or state is None:
            return {}
        if not is_due(function.spec.rollout, state, clock):
            return {}
        window = function.spec.rollout.interval
        found = self.metrics.golden(function.namespace, state.canary, window)
        return {state.canary: found} if found is not None else {}

    def _requeue(self, key: Key, delay: float | None) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if delay is not None:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._due, key)

    def _due(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    def _write_split(self, function: Function, traffic: list[TrafficTarget]) -> None:
        if not weights_of(traffic):
            return
        desired = make_traffic_split(function, traffic)
        desired["metadata"].update(_owned_by(function))
        try:
            current = self.store.get("TrafficSplit", function.namespace, function.name)
        except NotFound:
            self.store.create(desired)
            return
        if current.get("spec") != desired["spec"]:
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.store.update(desired)

    async def _remove(self, namespace: str, revision: str) -> None:
        """A revision goes: its replicas, then the object (its workload follows it)."""
        if self.sizer is not None:
            await self.sizer.untrack(namespace, revision)
        await self.scaler.remove(namespace, revision)
        with contextlib.suppress(NotFound):
            await self._io(self.store.delete, "Revision", namespace, revision)

    async def _cleanup(self, namespace: str, name: str, revisions: list[Revision]) -> None:
        self._requeue((namespace, name), None)
        for revision in revisions:
            self._retiring.pop((namespace, revision.name), None)
            await self._remove(namespace, revision.name)
        with contextlib.suppress(NotFound):
            await self._io(self.store.delete, "TrafficSplit", namespace, name)
        if self.exposure is not None:
            await self.exposure.withdraw(namespace, name)
        if revisions:
            log.info("function %s/%s removed with %d revisions", namespace, name, len(revisions))


def _owned_by(function: Function) -> Obj:
    """Metadata making an object the function's (Kubernetes' garbage collector deletes it
    with the function); nothing for a function read without a uid."""
    if not function.metadata.uid:
        return {}
    owner = {
        "apiVersion": API_VERSION,
        "kind": "Function",
        "name": function.name,
        "uid": function.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {"ownerReferences": [owner]}


def _log_rollout(function: Function, state: RolloutStatus | None) -> None:
    before = function.status.rollout
    if state is None:
        return
    if before is None or (before.phase, before.message) != (state.phase, state.message):
        log.info(
            "rollout of %s/%s: %s: %s",
            function.namespace,
            function.name,
            state.phase,
            state.message,
        )
