"""Keeps every revision at its desired number of ready replicas.

One ``RevisionSet`` per revision owns a reconcile task: it starts missing replicas, stops
surplus ones (taking them out of the routing table first, then draining them), and
restarts crashed replicas after a backoff. After every change it writes the revision's
status -- replicas, their addresses and readiness, and the Ready condition -- to the
store, which is how the gateway and the controller learn about it. The status also
carries what the autoscaler last said about the revision (panic, and the reason of its
decision), handed over with the replica count, so that it has a single writer.

A cold start hands the warm processes their work first and writes the status while they
load the function; the status write wakes the store's watchers (routes, controller) in
this process, and doing that beside the replica's start rather than before it keeps
their work off the cold path.

The reconcile loop runs supervised (``runtime.tasks``): an exception, or a status the
store could not write (a full disk), is shown on the task board and the loop runs again
after a backoff, so the revision converges once the cause is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry

from fnmesh.platform.http import ConnectionPool
from fnmesh.platform.model import Condition, ReplicaStatus, Revision, RevisionStatus
from fnmesh.platform.model.resources import set_condition
from fnmesh.platform.runtime.local.backoff import Backoff
from fnmesh.platform.runtime.local.logbook import LogBook
from fnmesh.platform.runtime.local.mesh import MeshSettings
from fnmesh.platform.runtime.local.metrics import RuntimeMetrics
from fnmesh.platform.runtime.local.pool import PROXY_POOL, RUNTIME_POOL, WarmPool
from fnmesh.platform.runtime.local.replica import LaunchSpec, Replica, ReplicaFailed
from fnmesh.platform.runtime.local.sandboxing import Sandboxing
from fnmesh.platform.runtime.local.secret_handoff import Handoff, SecretsUnavailable, hand_off
from fnmesh.platform.runtime.local.settings import RuntimeConfig
from fnmesh.platform.store import Conflict, NotFound, Store
from fnmesh.platform.store.sealing import SealingError
from fnmesh.platform.supervise import TaskBoard

log = logging.getLogger("fnmesh.runtime")


class SecretValues(Protocol):
    """Where the values of a namespace's secrets are read (the SecretStore is one)."""

    def read(self, namespace: str, name: str) -> Mapping[str, bytes]: ...


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RevisionSet:
    def __init__(self, runtime: LocalRuntime, revision: Revision) -> None:
        self.runtime = runtime
        self.revision = revision
        self.desired = 0
        self.replicas: list[Replica] = []
        self.crashes = 0
        self.failure: str | None = None
        self.restart_at = 0.0
        self.last_cold_start: float | None = None
        self.panic: bool | None = None
        self.reason: str | None = None
        self.busy = False  # the loop is starting or stopping replicas
        self.unwritten: Exception | None = None  # why the last status write failed
        self._wake = asyncio.Event()
        self._task = runtime.tasks.start(
            f"revision {revision.namespace}/{revision.name}", self._run
        )
        self._children: set[asyncio.Task[None]] = set()

    @property
    def key(self) -> tuple[str, str]:
        return self.revision.namespace, self.revision.name

    def set_desired(self, replicas: int) -> None:
        if replicas != self.desired:
            self.desired = replicas
            self._wake.set()

    async def close(self) -> None:
        self.desired = 0
        await self._task.stop()
        for task in list(self._children):
            task.cancel()
        await asyncio.gather(*self._children, return_exceptions=True)
        await self._stop(list(self.replicas))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            self.busy = True
            try:
                await self._reconcile()
            finally:
                self.busy = False
            self.runtime.publish(self)  # a no-op when nothing changed
            if self.unwritten is not None:
                # the board shows it, backs off, then this loop runs again
                raise RuntimeError(f"status not written: {self.unwritten}")
            self._task.recovered()
            if self.desired <= len(self.replicas):
                await self._wake.wait()
                continue
            # Replicas are missing: wait out the restart backoff, which may have ended
            # meanwhile (timers can also fire a little early: then this comes round again).
            delay = self.restart_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _reconcile(self) -> None:
        surplus = len(self.replicas) - self.desired
        if surplus > 0:
            victims = sorted(self.replicas, key=lambda r: (r.ready, -r.began))[:surplus]
            await self._stop(victims)
        missing = self.desired - len(self.replicas)
        if missing > 0 and time.monotonic() >= self.restart_at:
            await asyncio.gather(*(self._start() for _ in range(missing)))

    async def _start(self) -> None:
        try:
            spec = self.runtime.launch_spec(self.revision)
        except SecretsUnavailable as error:
            self._unlaunchable(f"revision {self.revision.name} cannot start: {error}")
            return
        replica = Replica(
            spec,
            self.runtime.sink(self.revision),
            host=self.runtime.host,
            socket_dir=self.runtime.mesh.socket_dir if self.runtime.mesh else None,
            sandboxing=self.runtime.sandboxing,
        )
        self.replicas.append(replica)
        try:
            await replica.start(
                self.runtime.config.ready_timeout,
                self.runtime.pool,
                mesh=self.runtime.mesh,
                proxy_pool=self.runtime.proxy_pool,
                launched=lambda: self.runtime.publish(self),
            )
        except (ReplicaFailed, OSError) as error:
            self.replicas.remove(replica)
            await replica.kill()
            await replica.clean()
            self._crashed(replica, str(error))
            return
        self.failure = None
        self.last_cold_start = replica.cold_start
        if replica.cold_start is not None:
            self.runtime.metrics.cold_start(self.revision, replica.cold_start)
        log.info(
            "replica %s ready at %s in %.0f ms%s",
            replica.name,
            replica.address,
            (replica.cold_start or 0) * 1000,
            " (warm)" if replica.warm else "",
        )
        self.runtime.publish(self)
        watcher = asyncio.create_task(self._watch(replica))
        self._children.add(watcher)
        watcher.add_done_callback(self._children.discard)

    async def _watch(self, replica: Replica) -> None:
        probe = asyncio.create_task(self._probe(replica), name=f"probe {replica.name}")
        try:
            code = await replica.wait()
        finally:
            probe.cancel()
        if replica.stopping:
            return
        reason = replica.exit_reason(code)  # before its cgroup (which knows of OOM) goes
        await replica.clean()
        if replica in self.replicas:
            self.replicas.remove(replica)
        self._crashed(replica, reason)
        self._wake.set()

    async def _probe(self, replica: Replica) -> None:
        """Recycle a replica that stops answering its health check (every handler thread
        stuck past the function's timeout, or an event loop that no longer turns)."""
        config = self.runtime.config
        failures = 0
        while not replica.stopping:
            await asyncio.sleep(config.probe_interval)
            problem = await replica.probe(self.runtime.probes, timeout=config.probe_interval)
            failures = failures + 1 if problem else 0
            if problem is None or failures < config.probe_failures or replica.stopping:
                continue
            log.warning("replica %s: %s; recycling it", replica.name, problem)
            replica.recycled = problem
            replica.ready = False
            self.runtime.publish(self)  # out of the routing table at once
            await replica.kill()  # _watch sees the exit and starts another after a backoff
            return

    def _crashed(self, replica: Replica, reason: str) -> None:
        backoff: Backoff = self.runtime.backoff
        ran = time.monotonic() - replica.began
        self.crashes = backoff.next_crashes(self.crashes, ran)
        self.restart_at = time.monotonic() + backoff.delay(self.crashes)
        self.failure = reason
        log.warning(
            "%s (restart %d in %.1fs)",
            reason.splitlines()[0],
            self.crashes,
            backoff.delay(self.crashes),
        )
        self.runtime.publish(self)

    def _unlaunchable(self, reason: str) -> None:
        """Nothing was started (e.g. a secret is missing): back off as after a crash."""
        backoff: Backoff = self.runtime.backoff
        self.crashes = backoff.next_crashes(self.crashes, 0.0)
        self.restart_at = time.monotonic() + backoff.delay(self.crashes)
        self.failure = reason
        log.warning("%s (retry in %.1fs)", reason, backoff.delay(self.crashes))
        self.runtime.publish(self)

    async def _stop(self, victims: list[Replica]) -> None:
        if not victims:
            return
        routed = any(r.ready for r in victims)
        for replica in victims:
            replica.ready = False
            replica.stopping = True
        self.runtime.publish(self)  # out of the routing table before it drains
        if routed:
            # the routers learn it from the store's change feed: until they have, a
            # request may still be sent to it, and a proxy that stopped listening at once
            # would refuse it (seen under soak as a 502 "cannot connect")
            await asyncio.sleep(self.runtime.config.unroute_delay)
        await asyncio.gather(*(r.stop(self.runtime.config.stop_timeout + 1.0) for r in victims))
        for replica in victims:
            await replica.clean()
            if replica in self.replicas:
                self.replicas.remove(replica)
        self.runtime.publish(self)

    def status(self) -> RevisionStatus:
        ready = [r for r in self.replicas if r.ready]
        replicas = [
            ReplicaStatus(
                name=r.name,
                address=r.address,
                ready=r.ready,
                pid=r.pid,
                started_at=_iso(r.started_at),
                restarts=self.crashes,
                metrics_url=r.metrics_url,
            )
            for r in self.replicas
        ]
        if ready:
            cond = Condition(
                "Ready", "True", "ReplicasReady", f"{len(ready)} of {self.desired} replicas ready"
            )
        elif self.failure:
            cond = Condition("Ready", "False", "ReplicaFailed", self.failure)
        elif self.desired == 0:
            cond = Condition("Ready", "Unknown", "ScaledToZero", "no replicas are running")
        else:
            cond = Condition("Ready", "Unknown", "Starting", "replicas are starting")
        conditions = set_condition(list(self.revision.status.conditions), cond)
        return replace(
            self.revision.status,
            desired_replicas=self.desired,
            ready_replicas=len(ready),
            replicas=replicas,
            conditions=conditions,
            last_cold_start_seconds=self.last_cold_start,
            panic=self.panic,
            scaling_reason=self.reason,
        )


class LocalRuntime:
    """The supervisor of all local replicas."""

    def __init__(
        self,
        config: RuntimeConfig,
        store: Store,
        build_root: Path,
        logbook: LogBook,
        *,
        host: str = "127.0.0.1",
        mesh: MeshSettings | None = None,
        registry: CollectorRegistry | None = None,
        sandboxing: Sandboxing | None = None,
        secrets: SecretValues | None = None,
        tasks: TaskBoard | None = None,
    ) -> None:
        self.config = config
        self.secrets = secrets
        self.tasks = tasks if tasks is not None else TaskBoard()
        self.mesh = mesh
        # None: replicas run as the platform's own user, unconfined (--unsafe-no-sandbox)
        self.sandboxing = sandboxing if mesh is not None else None
        self.store = store
        self.build_root = build_root
        self.logbook = logbook
        self.host = host
        self.backoff = Backoff(config.restart_backoff_min, config.restart_backoff_max)
        self.sets: dict[tuple[str, str], RevisionSet] = {}
        delay = config.warm_pool_refill_delay
        self.pool = WarmPool(
            config.warm_pool_size,
            RUNTIME_POOL,
            refill_delay=delay,
            prepare=sandboxing.prepare if sandboxing is not None and mesh is not None else None,
        )
        self.proxy_pool = WarmPool(
            config.warm_pool_size if mesh else 0, PROXY_POOL, refill_delay=delay
        )
        self.metrics = RuntimeMetrics(registry if registry is not None else CollectorRegistry())
        self.probes = ConnectionPool(max_idle_per_host=1)  # liveness checks of runtimes

    def start(self) -> None:
        self.pool.start()
        self.proxy_pool.start()

    async def scale(
        self,
        revision: Revision,
        replicas: int,
        *,
        panic: bool | None = None,
        reason: str | None = None,
    ) -> None:
        """Keep ``replicas`` of ``revision`` running. ``panic`` and ``reason`` are the
        autoscaler's last decision, shown in the revision's status (None: not autoscaled).
        A new count is published by the revision's loop as it acts on it (after handing a
        cold start its work), or here when that loop is busy with an earlier change."""
        replicas = max(0, min(replicas, self.config.max_replicas))
        key = (revision.namespace, revision.name)
        current = self.sets.get(key)
        if current is None:
            if replicas == 0:
                return
            current = self.sets[key] = RevisionSet(self, revision)
        self.metrics.scaled(revision, current.desired, replicas)
        noted = (current.panic, current.reason) != (panic, reason)
        current.panic, current.reason = panic, reason
        if replicas != current.desired:
            current.set_desired(replicas)
            if current.busy:
                self.publish(current)
        elif noted:
            self.publish(current)

    def ready_count(self, namespace: str, revision: str) -> int:
        current = self.sets.get((namespace, revision))
        return sum(1 for r in current.replicas if r.ready) if current else 0

    async def remove(self, namespace: str, revision: str) -> None:
        current = self.sets.pop((namespace, revision), None)
        if current is not None:
            await current.close()
            self.metrics.forget(current.revision)

    async def close(self) -> None:
        sets, self.sets = list(self.sets.values()), {}
        await asyncio.gather(*(s.close() for s in sets))
        await self.pool.close()
        await self.proxy_pool.close()
        await self.probes.close()

    def launch_spec(self, revision: Revision) -> LaunchSpec:
        artifact = revision.spec.artifact
        source = self.build_root / "artifacts" / artifact.digest.removeprefix("sha256:")
        sites = (self.build_root / "envs" / artifact.environment,) if artifact.environment else ()
        # values are resolved at each launch and live only in the LaunchSpec, never stored
        handoff = self._secrets_for(revision)
        return LaunchSpec(
            namespace=revision.namespace,
            function=revision.spec.function,
            revision=revision.name,
            source_dir=source,
            handler=revision.spec.handler,
            sites=sites,
            env=dict(revision.spec.env) | handoff.env,
            concurrency=revision.spec.concurrency,
            timeout=revision.spec.timeout,
            drain_timeout=self.config.stop_timeout,
            service_account=revision.spec.service_account,
            secrets=handoff.secrets,
            resources=revision.spec.resources,
        )

    def _secrets_for(self, revision: Revision) -> Handoff:
        """The revision's secrets and secretEnv, read from the store (decrypted) now."""
        names, secret_env = revision.spec.secrets, revision.spec.secret_env
        if not names and not secret_env:
            return Handoff()
        if self.secrets is None:
            raise SecretsUnavailable("this platform keeps no secrets: remove 'secrets'")
        found: dict[str, Mapping[str, bytes] | None] = {}
        for name in names:
            try:
                found[name] = self.secrets.read(revision.namespace, name)
            except NotFound:
                found[name] = None
            except SealingError as error:
                raise SecretsUnavailable(str(error)) from None
        return hand_off(revision.namespace, names, secret_env, found)

    def sink(self, revision: Revision) -> Callable[[str, str, str], None]:
        def write(replica: str, stream: str, line: str) -> None:
            self.logbook.write(revision.namespace, revision.spec.function, replica, stream, line)

        return write

    def publish(self, current: RevisionSet) -> None:
        """Write the revision's status; retry on conflicts with other writers. A write
        that fails otherwise never raises here (replicas must still start and stop): it
        is kept in ``current.unwritten`` and the revision's loop is woken to retry it."""
        namespace, name = current.key
        try:
            for _ in range(5):
                try:
                    fresh = Revision.from_dict(self.store.get("Revision", namespace, name))
                except NotFound:
                    break
                current.revision = fresh
                body = fresh.with_status(current.status()).to_dict()
                try:
                    self.store.update_status(body)
                    break
                except Conflict:
                    continue
        except Exception as error:
            if current.unwritten is None:
                log.warning("status of revision %s/%s not written: %s", namespace, name, error)
            current.unwritten = error
            current._wake.set()
            return
        current.unwritten = None
