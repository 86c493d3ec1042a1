"""A process kubelet: the Deployments of a test cluster, run as local processes.

It plays three parts of a cluster at once, against any Kubernetes API (the in-memory one
of ``kmockapi``), from a thread with its own event loop:

- **the Deployment and ReplicaSet controllers and the kubelet**: for every Deployment it
  keeps ``spec.replicas`` pods of the current template (``deployments/scale`` is just
  ``spec.replicas``); a pod runs its init containers one after the other, then its
  containers (``pods.py`` says how a container becomes a process), and is ready when
  every container is running and every readiness probe answers 200; a pod whose
  container exits is replaced after ``restart_delay``; on scale-down or delete the pods
  get SIGTERM, then SIGKILL after their grace period (not-ready pods go first, then the
  newest); a new template replaces the old pods once the new ones are ready. The
  Deployment's ``status`` says ``replicas``, ``readyReplicas``, ``availableReplicas``,
  ``updatedReplicas`` and ``observedGeneration``;
- **the endpoints controller**: every Service's ready pods, written as its ``Endpoints``
  and its ``EndpointSlice`` (``<service>-local``) with the pods' addresses;
- **kube-proxy and DNS**: every Service gets a loopback address with a forwarder on its
  ports (``serviceproxy.py``), and ``hosts_file`` lists ``<svc>.<ns>.svc`` -> that address
  for the components (``FNMESH_SERVICE_HOSTS``).

Projected service-account tokens are minted by ``tokens`` (``tokenreviews.py``), which the
cluster's TokenReview answers from. Every container's output is kept in ``logs/``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from kmockapi import AS_ADMIN
from support.pods import Pod, PodSpecError, Process, container_process, pod_files, target_port
from support.pods import volume_folders as folders_of
from support.serviceproxy import Forwarder, hosts_text, write_atomically
from support.tokenreviews import ServiceAccountTokens

log = logging.getLogger("tests.kubelet")
Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
MERGE = "application/merge-patch+json"
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class RunningPod:
    pod: Pod
    deployment: Key
    template_hash: str
    spec: Obj
    root: Path
    created: float
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    ready: bool = False
    failed: str = ""
    stopping: bool = False
    task: asyncio.Task[None] | None = None


class Addresses:
    """Loopback addresses, one per pod or Service, in a /16 of 127/8 picked at random."""

    def __init__(self) -> None:
        self.prefix = f"127.{random.randint(100, 250)}"
        self._next = 1

    def take(self) -> str:
        index = self._next
        self._next += 1
        return f"{self.prefix}.{index // 250}.{index % 250 + 1}"


class ProcessKubelet:
    def __init__(
        self,
        api_url: str,
        root: Path,
        tokens: ServiceAccountTokens,
        *,
        probe_every: float = 0.1,
        restart_delay: float = 1.0,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.root = root
        self.tokens = tokens
        self.probe_every = probe_every
        self.restart_delay = restart_delay
        self.base_env = dict(base_env or {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        self.hosts_file = root / "hosts"
        self.logs = root / "logs"
        self.addresses = Addresses()
        self.pods: dict[str, RunningPod] = {}
        self.events: list[str] = []  # what happened to pods, for a failing test's message
        self._failed_at: dict[Key, float] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._written: dict[tuple[str, Key], Any] = {}
        self._services: dict[Key, str] = {}
        self._forwarders: dict[tuple[Key, int], Forwarder] = {}
        self._loop = uvloop.new_event_loop()  # the Services' bytes all pass through here
        self._thread = threading.Thread(target=self._run, name="kubelet", daemon=True)
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self.failure: BaseException | None = None

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        write_atomically(self.hosts_file, "")
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the kubelet did not start")
        if self.failure is not None:
            raise RuntimeError(f"the kubelet failed: {self.failure!r}")

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def pod_logs(self) -> str:
        out = ["--- kubelet", *self.events[-50:]]
        for path in sorted(self.logs.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as error:
            self.failure = error
            log.exception("the kubelet failed")
        finally:
            self._started.set()
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
        # a node's kubelet may read and write every pod-ish thing: the test cluster's admin
        async with aiohttp.ClientSession(timeout=timeout, headers=AS_ADMIN) as self._session:
            watches = [
                asyncio.create_task(self._watch("/apis/apps/v1/deployments")),
                asyncio.create_task(self._watch("/api/v1/services")),
            ]
            self._started.set()
            try:
                while not self._stop.is_set():
                    try:
                        await self._reconcile()
                    except (aiohttp.ClientError, OSError, PodSpecError) as error:
                        log.warning("reconcile: %s", error)
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake(), 0.5)
            finally:
                for task in watches:
                    task.cancel()
                await asyncio.gather(*watches, return_exceptions=True)
                await asyncio.gather(
                    *(self._stop_pod(p) for p in list(self.pods.values())),
                    return_exceptions=True,
                )
                for forwarder in self._forwarders.values():
                    await forwarder.close()

    async def _wake(self) -> None:
        assert self._stop is not None and self._changed is not None
        stop, changed = (
            asyncio.ensure_future(self._stop.wait()),
            asyncio.ensure_future(self._changed.wait()),
        )
        try:
            await asyncio.wait({stop, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            changed.cancel()

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _watch(self, path: str) -> None:
        """Any change of ``path``'s objects wakes the reconciler (which reads them whole)."""
        assert self._session is not None
        while True:
            try:
                url = f"{self.api_url}{path}?watch=true&timeoutSeconds=30"
                async with self._session.get(url) as response:
                    async for line in response.content:
                        if line.strip():
                            self._poke()
            except (aiohttp.ClientError, OSError) as error:
                log.info("watch %s: %s", path, error)
                await asyncio.sleep(0.2)

    # -- the API ---------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: Any = None, merge: bool = False) -> Any:
        assert self._session is not None
        headers = {"Content-Type": MERGE} if merge else {}
        async with self._session.request(
            method, self.api_url + path, json=body, headers=headers
        ) as response:
            data = await response.json(content_type=None)
            if response.status == 404:
                return None
            if response.status >= 400:
                raise aiohttp.ClientError(f"{method} {path}: {response.status} {data}")
            return data

    async def _items(self, path: str) -> list[Obj]:
        found = await self._call("GET", path)
        return list((found or {}).get("items") or [])

    async def _secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        found = await self._call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if found is None:
            return None
        return {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}

    async def _write(self, what: str, key: Key, path: str, body: Obj, create: str) -> None:
        """PATCH ``path`` with ``body`` unless it is what was last written; POST ``create``
        (the collection) when the object is not there yet."""
        if self._written.get((what, key)) == body:
            return
        patched = await self._call("PATCH", path, body, merge=True)
        if patched is None:
            meta = {**body.get("metadata", {}), "name": path.rsplit("/", 1)[-1]}
            await self._call("POST", create, {**body, "metadata": {**meta, "namespace": key[0]}})
        self._written[(what, key)] = body

    # -- reconciling -----------------------------------------------------------------------

    async def _reconcile(self) -> None:
        deployments = {
            (d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d
            for d in await self._items("/apis/apps/v1/deployments")
        }
        for pod in list(self.pods.values()):
            if pod.deployment not in deployments and not pod.stopping:
                self._stop_soon(pod)
        statuses = {
            key: await self._reconcile_deployment(key, deployment)
            for key, deployment in deployments.items()
        }
        services = {
            (s["metadata"].get("namespace", "default"), s["metadata"]["name"]): s
            for s in await self._items("/api/v1/services")
        }
        # Services first: a ready pod is behind its Service before anyone reads it is ready
        await self._reconcile_services(services)
        for (namespace, name), status in statuses.items():
            current = deployments[(namespace, name)].get("status") or {}
            if {k: current.get(k) for k in status} != status:
                path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"
                await self._call("PATCH", path, {"status": status}, merge=True)

    async def _reconcile_deployment(self, key: Key, deployment: Obj) -> dict[str, int]:
        """Start and stop ``deployment``'s pods; the status to report for it."""
        spec = deployment.get("spec") or {}
        wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        template = spec.get("template") or {}
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[
            :10
        ]
        mine = [p for p in self.pods.values() if p.deployment == key and not p.stopping]
        for pod in mine:
            if pod.failed:
                self.events.append(f"pod {pod.pod.name} failed: {pod.failed}")
                self._failed_at[key] = time.monotonic()
                self._stop_soon(pod)
        mine = [p for p in mine if not p.stopping]
        current = [p for p in mine if p.template_hash == template_hash]
        old = [p for p in mine if p.template_hash != template_hash]
        if len(current) > wanted:
            ordered = sorted(current, key=lambda p: (p.ready, p.created))
            for pod in ordered[: len(current) - wanted]:
                self._stop_soon(pod)
            current = ordered[len(current) - wanted :]
        elif len(current) < wanted and not self._backing_off(key):
            for _ in range(wanted - len(current)):
                current.append(await self._start_pod(key, deployment, template_hash))
        if old and (wanted == 0 or sum(p.ready for p in current) >= wanted):
            for pod in old:
                self._stop_soon(pod)
            old = []
        alive = current + old
        ready = sum(p.ready for p in alive)
        return {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": len(alive),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": len(current),
        }

    async def _start_pod(self, key: Key, deployment: Obj, template_hash: str) -> RunningPod:
        namespace, name = key
        template = (deployment.get("spec") or {}).get("template") or {}
        meta = template.get("metadata") or {}
        spec = template.get("spec") or {}
        pod = Pod(
            name=f"{name}-{template_hash[:6]}-{os.urandom(3).hex()}",
            namespace=namespace,
            address=self.addresses.take(),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            service_account=str(spec.get("serviceAccountName") or "default"),
        )
        running = RunningPod(
            pod, key, template_hash, spec, self.root / "pods" / pod.name, time.monotonic()
        )
        self.pods[pod.name] = running
        running.task = asyncio.create_task(self._run_pod(running))
        log.info("pod %s of %s/%s at %s", pod.name, namespace, name, pod.address)
        return running

    def _backing_off(self, key: Key) -> bool:
        """Whether a pod of ``key`` failed less than ``restart_delay`` ago."""
        return time.monotonic() - self._failed_at.get(key, -self.restart_delay) < self.restart_delay

    def _stop_soon(self, pod: RunningPod) -> None:
        pod.stopping = True
        self._stopping.add(task := asyncio.create_task(self._stop_pod(pod)))
        task.add_done_callback(self._stopping.discard)

    # -- one pod ---------------------------------------------------------------------------

    async def _run_pod(self, running: RunningPod) -> None:
        try:
            await self._prepare(running)
            for container in running.spec.get("initContainers") or []:
                process = await self._spawn(running, await self._process(running, container))
                code = await process.wait()
                del running.processes[container["name"]]
                if code != 0:
                    running.failed = f"init container {container['name']} exited {code}"
                    return
            probes = {}
            for container in running.spec.get("containers") or []:
                spec = await self._process(running, container)
                await self._spawn(running, spec)
                probes[spec.name] = spec.ready_probe
            await self._watch_pod(running, probes)
        except (PodSpecError, OSError, aiohttp.ClientError) as error:
            running.failed = str(error)
        finally:
            running.ready = False
            self._poke()

    async def _prepare(self, running: RunningPod) -> None:
        folders = folders_of(running.spec, running.root)
        secrets: dict[str, Mapping[str, bytes] | None] = {}
        for volume in running.spec.get("volumes") or []:
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                secrets[name] = await self._secret(running.pod.namespace, name)
        pod = running.pod

        def token(audience: str, seconds: int) -> str:
            return self.tokens.mint(pod.namespace, pod.service_account, (audience,))

        files = pod_files(
            running.spec, pod, folders, token=token, secret_data=lambda n: secrets.get(n)
        )
        for folder in files.folders:
            folder.mkdir(parents=True, exist_ok=True)
        for path, (content, mode) in files.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(mode)

    async def _process(self, running: RunningPod, container: Obj) -> Process:
        values: dict[tuple[str, str], str | None] = {}
        for variable in container.get("env") or []:
            ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
            if ref is not None:
                data = await self._secret(running.pod.namespace, ref["name"]) or {}
                value = data.get(ref["key"])
                values[(ref["name"], ref["key"])] = value.decode() if value is not None else None
        return container_process(
            container,
            running.pod,
            folders_of(running.spec, running.root),
            secret=lambda name, key: values.get((name, key)),
        )

    async def _spawn(self, running: RunningPod, spec: Process) -> asyncio.subprocess.Process:
        output = (self.logs / f"{running.pod.name}.{spec.name}.log").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                *spec.argv,
                env={**self.base_env, **spec.env},
                cwd=running.root,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        finally:
            output.close()
        running.processes[spec.name] = process
        return process

    async def _watch_pod(self, running: RunningPod, probes: Mapping[str, Any]) -> None:
        assert self._session is not None
        probe_timeout = aiohttp.ClientTimeout(total=1)
        failures = dict.fromkeys(probes, 0)  # in a row, per probed container
        while True:
            for name, process in running.processes.items():
                if process.returncode is not None:
                    running.failed = f"container {name} exited {process.returncode}"
                    return
            for name, probe in probes.items():
                if probe is None:
                    continue
                url = f"http://{running.pod.address}:{probe.port}{probe.path}"
                try:
                    async with self._session.get(url, timeout=probe_timeout) as response:
                        passed = response.status == 200
                except (aiohttp.ClientError, OSError, TimeoutError):
                    passed = False
                failures[name] = 0 if passed else failures[name] + 1
            # ready once every probe passes; not ready after failure_threshold in a row
            ready = all(
                failures[name] == 0
                if not running.ready
                else failures[name] < (probe.failure_threshold if probe else 1)
                for name, probe in probes.items()
            )
            if ready != running.ready:
                running.ready = ready
                self._poke()
            await asyncio.sleep(self.probe_every)

    async def _stop_pod(self, running: RunningPod) -> None:
        running.stopping = True
        running.ready = False
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task
        grace = float(running.spec.get("terminationGracePeriodSeconds", 30))
        alive = [p for p in running.processes.values() if p.returncode is None]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in alive)), grace)
        except TimeoutError:
            for process in alive:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await asyncio.gather(*(p.wait() for p in alive))
        shutil.rmtree(running.root, ignore_errors=True)
        self.pods.pop(running.pod.name, None)
        self._poke()

    # -- Services ----------------------------------------------------------------------------

    async def _reconcile_services(self, services: dict[Key, Obj]) -> None:
        for key in list(self._services):
            if key not in services:
                self._services.pop(key)
                for (owner, port), forwarder in list(self._forwarders.items()):
                    if owner == key:
                        await forwarder.close()
                        del self._forwarders[(owner, port)]
        hosts_before = dict(self._services)
        for key, service in services.items():
            address = self._services.setdefault(key, self.addresses.take())
            await self._reconcile_service(key, service, address)
        if self._services != hosts_before:
            write_atomically(self.hosts_file, hosts_text(self._services))

    async def _reconcile_service(self, key: Key, service: Obj, address: str) -> None:
        namespace, name = key
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        ready = [
            p
            for p in self.pods.values()
            if p.ready
            and not p.stopping
            and p.pod.namespace == namespace
            and selector
            and all(p.pod.labels.get(k) == v for k, v in selector.items())
        ]
        ports = spec.get("ports") or []
        for port in ports:
            forwarder = self._forwarders.get((key, int(port["port"])))
            if forwarder is None:
                forwarder = Forwarder(address, int(port["port"]))
                await forwarder.start()
                self._forwarders[(key, int(port["port"]))] = forwarder
            forwarder.targets = [(p.pod.address, target_port(p.spec, port)) for p in ready]
        pods = sorted(ready, key=lambda p: p.pod.name)
        addresses = [
            {"ip": p.pod.address, "targetRef": {"kind": "Pod", "name": p.pod.name}} for p in pods
        ]
        target_ports = [
            {"name": port.get("name", ""), "port": target_port(p.spec, port), "protocol": "TCP"}
            for port in ports
            for p in pods[:1]
        ]
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "subsets": [{"addresses": addresses, "ports": target_ports}] if pods else [],
        }
        await self._write(
            "endpoints",
            key,
            f"/api/v1/namespaces/{namespace}/endpoints/{name}",
            endpoints,
            f"/api/v1/namespaces/{namespace}/endpoints",
        )
        group = "/apis/discovery.k8s.io/v1"
        sliced = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "addressType": "IPv4",
            "metadata": {"labels": {"kubernetes.io/service-name": name}},
            "endpoints": [
                {
                    "addresses": [p.pod.address],
                    "conditions": {"ready": True},
                    "targetRef": {"kind": "Pod", "name": p.pod.name, "namespace": namespace},
                }
                for p in pods
            ],
            "ports": target_ports,
        }
        await self._write(
            "endpointslice",
            key,
            f"{group}/namespaces/{namespace}/endpointslices/{name}-local",
            sliced,
            f"{group}/namespaces/{namespace}/endpointslices",
        )
