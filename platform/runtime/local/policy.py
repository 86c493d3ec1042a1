"""Who may call each function: policy files the replica proxies read.

A function's policy is ``{"public": <visibility is public>, "allow": [identities]}``: a
public function takes the gateway and the activator (the proxy knows their identities);
``allow`` adds the sources of every SMI TrafficTarget (``access.smi-spec.io``) whose
destination is the function's service account, and, for a private function, ``gateway``
when given: that gateway serves private functions only to callers with a token that may
invoke them. ``policy_for`` decides (pure);
``PolicyWriter`` follows the store and writes one file per function, atomically, under
the platform home.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from fnmesh.platform.mesh.identity.names import identity_name
from fnmesh.platform.store import Expired, Store
from fnmesh.platform.supervise import Supervised, TaskBoard

log = logging.getLogger("fnmesh.runtime")


def policy_for(
    function: dict[str, Any],
    targets: list[dict[str, Any]],
    trust_domain: str,
    gateway: str | None = None,
) -> dict[str, Any]:
    meta, spec = function["metadata"], function.get("spec") or {}
    namespace = meta.get("namespace", "default")
    account = spec.get("serviceAccount") or meta["name"]
    allow: set[str] = set()
    for target in targets:
        body = target.get("spec") or {}
        destination = body.get("destination") or {}
        if destination.get("kind") != "ServiceAccount" or destination.get("name") != account:
            continue
        if destination.get("namespace", target["metadata"].get("namespace")) != namespace:
            continue
        for source in body.get("sources") or []:
            if source.get("kind") != "ServiceAccount" or not source.get("name"):
                continue
            source_namespace = source.get("namespace") or target["metadata"].get("namespace")
            with contextlib.suppress(ValueError):
                allow.add(identity_name(source["name"], source_namespace, trust_domain))
    public = spec.get("visibility", "public") == "public"
    if not public and gateway:
        allow.add(gateway)
    return {"public": public, "allow": sorted(allow)}


class PolicyWriter:
    def __init__(
        self,
        store: Store,
        directory: Path,
        trust_domain: str,
        gateway: str | None = None,
        *,
        tasks: TaskBoard | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.tasks = tasks if tasks is not None else TaskBoard()
        self.directory = directory
        self.trust_domain = trust_domain
        self._task: Supervised | None = None

    def path(self, namespace: str, function: str) -> Path:
        return self.directory / namespace / f"{function}.json"

    def start(self) -> None:
        self.write_all()
        self._task = self.tasks.start("policy writer", self._follow_all)

    async def close(self) -> None:
        if self._task is not None:
            await self._task.stop()

    async def _follow_all(self) -> None:
        """Write every policy, then follow changes (a restart after a failure rewrites)."""
        await self._follow(self.write_all())

    def write_all(self) -> int:
        functions, version = self.store.list("Function")
        targets = self.store.list("TrafficTarget")[0]
        for function in functions:
            self._write(function, targets)
        return version

    async def _follow(self, version: int) -> None:
        while True:
            try:
                async for event in self.store.watch(
                    frozenset({"Function", "TrafficTarget"}), version
                ):
                    version = event.resource_version
                    if event.kind == "Function" and event.type == "DELETED":
                        with contextlib.suppress(FileNotFoundError):
                            self.path(event.namespace, event.name).unlink()
                        continue
                    targets = self.store.list("TrafficTarget")[0]
                    if event.kind == "Function":
                        self._write(event.object, targets)
                    else:
                        for function in self.store.list("Function", event.namespace)[0]:
                            self._write(function, targets)
            except Expired:
                version = self.write_all()

    def _write(self, function: dict[str, Any], targets: list[dict[str, Any]]) -> None:
        meta = function["metadata"]
        path = self.path(meta.get("namespace", "default"), meta["name"])
        document = policy_for(function, targets, self.trust_domain, self.gateway)
        text = json.dumps(document, indent=2) + "\n"
        with contextlib.suppress(FileNotFoundError):
            if path.read_text() == text:
                return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
