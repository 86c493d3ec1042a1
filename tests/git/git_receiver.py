"""The API app with its git receiver, served by uvicorn in the test's own event loop.

Real store, tokens, builder, deploy service and controller; only the replicas are
stand-ins: ``ReadyScaler`` (the controller's runtime and autoscaler) marks a revision
ready as soon as the controller wants it running (or failed, when its env has
``FAIL_START``), so a push's wait for its revision ends without starting processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import uvicorn

from fnmesh.platform.api import ApiDeps, build_app
from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.build import Builder, BuildLimits
from fnmesh.platform.controller import Controller
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.git.gate import Deployer
from fnmesh.platform.git.service import GitService, GitSettings
from fnmesh.platform.git.urls import remote_url
from fnmesh.platform.model import Condition, Function, Revision
from fnmesh.platform.model.resources import condition
from fnmesh.platform.store import Conflict, SqliteStore


class ReadyScaler:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.asked: list[tuple[str, int]] = []

    async def track(self, revision: Revision) -> None:
        await self.scale(revision, 1)

    async def untrack(self, namespace: str, name: str) -> None:
        return None

    async def scale(self, revision: Revision, replicas: int) -> None:
        self.asked.append((revision.name, replicas))
        if replicas == 0 or condition(revision.status.conditions, "Ready") is not None:
            return
        failing = "FAIL_START" in revision.spec.env
        ready = Condition(
            "Ready",
            "False" if failing else "True",
            "ReplicaFailed" if failing else "Ready",
            "the handler module failed to import" if failing else "1 replica ready",
        )
        status = replace(revision.status, conditions=[ready], ready_replicas=0 if failing else 1)
        with contextlib.suppress(Conflict):  # the controller comes back with a newer one
            self.store.update_status(revision.with_status(status).to_dict())

    async def remove(self, namespace: str, revision: str) -> None:
        return None


class NoLogs:
    def tail(self, namespace: str, function: str, lines: int) -> list[str]:
        return []

    async def follow(self, namespace: str, function: str, lines: int) -> AsyncIterator[str]:
        for line in ():
            yield line


@dataclass
class Receiver:
    api: str
    token: str
    home: Path
    store: SqliteStore
    service: GitService
    deploy: DeployService

    def url(
        self,
        name: str,
        *,
        namespace: str = "default",
        subdir: str = "",
        token: str | None = None,
    ) -> str:
        """The remote URL with credentials in it (token None: this platform's token)."""
        secret = self.token if token is None else token
        base = remote_url(self.api, namespace, name, subdir)
        return base.replace("http://", f"http://fn:{quote(secret, safe='')}@", 1)

    def repo(self, name: str, namespace: str = "default") -> Path:
        return self.home / "git" / namespace / f"{name}.git"

    def function(self, name: str, namespace: str = "default") -> Function:
        return Function.from_dict(self.store.get("Function", namespace, name))

    def revisions(self, name: str) -> list[Revision]:
        items = self.store.list("Revision", "default", {"fnmesh.dev/function": name})[0]
        return sorted((Revision.from_dict(i) for i in items), key=lambda r: r.name)


@asynccontextmanager
async def running_receiver(
    home: Path,
    *,
    max_bundle_bytes: int = 50 * 1024 * 1024,
    ready_timeout: float = 30.0,
    wrap_deployer: Callable[[DeployService], Deployer] | None = None,
    max_unpacked_bytes: int = BuildLimits().max_unpacked_bytes,
) -> AsyncIterator[Receiver]:
    store = SqliteStore(home / "state.db")  # makes the home too
    limits = BuildLimits(max_bundle_bytes=max_bundle_bytes, max_unpacked_bytes=max_unpacked_bytes)
    builder = Builder(home / "build", limits=limits)
    deploy = DeployService(store, builder, limits)
    tokens = Tokens(store)
    token = tokens.mint("admin")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    api = f"http://127.0.0.1:{sock.getsockname()[1]}"
    scaler = ReadyScaler(store)
    controller = Controller(store, scaler, scaler, url_for=lambda ns, n: f"{api}/fn/{n}/")
    app = build_app(
        ApiDeps(
            store=store,
            tokens=tokens,
            deploy=deploy,
            builder=builder,
            logbook=NoLogs(),
            max_bundle_bytes=max_bundle_bytes,
        )
    )
    service = GitService.create(
        GitSettings(
            root=home / "git", max_push_bytes=max_bundle_bytes, ready_timeout=ready_timeout
        ),
        tokens=tokens,
        deployer=wrap_deployer(deploy) if wrap_deployer else deploy,
        builder=builder,
        functions=store,
    )
    app.state.git = service
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, ws="none")
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    controller.start()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield Receiver(api, token, home, store, service, deploy)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await controller.close()
        store.close()
        sock.close()
