"""The API app over a real SQLite store and controller, served by uvicorn in the test's loop.

Replicas are stand-ins: a revision is ready as soon as the controller wants it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from support.rollouts import NoLogs, ReadyReplicas, deploy

from fnmesh.platform.api import ApiDeps, build_app
from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.build import Builder, BuildLimits
from fnmesh.platform.controller import Controller
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.model import Function
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.store import SqliteStore
from fnmesh.platform.supervise import TaskBoard
from fnmesh.platform.telemetry.reader import TelemetryReader

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"


@dataclass
class Api:
    url: str
    token: str
    store: SqliteStore
    session: aiohttp.ClientSession
    tokens: Tokens
    tasks: TaskBoard

    async def call(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
        return await self.raw(method, NS + path, body, **query)

    async def raw(
        self, method: str, path: str, body: Any = None, token: str | None = None, **query: str
    ) -> tuple[int, Any]:
        """``method path`` (from the API's root) with ``token`` (default: the admin's)."""
        headers = {"Authorization": f"Bearer {token or self.token}"} if token != "" else {}
        async with self.session.request(
            method, self.url + path, json=body, params=query, headers=headers
        ) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    def function(self, name: str = "hello") -> Function:
        return Function.from_dict(self.store.get("Function", "default", name))

    def weights(self, name: str = "hello") -> dict[str, int]:
        return {t.revision: t.percent for t in self.function(name).status.traffic if t.percent}

    def deploy(self, version: int) -> None:
        deploy(self.store, version)

    async def until(self, what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")


@asynccontextmanager
async def running_api(
    home: Path,
    *,
    controller: bool = True,
    clock: Callable[[], float] = time.time,
    resources: ResourcePolicy | None = None,
    telemetry: TelemetryReader | None = None,
) -> AsyncIterator[Api]:
    """The API on a real store; ``clock`` is the wall clock tokens expire by."""
    store = SqliteStore(home / "state.db")
    limits = BuildLimits()
    builder = Builder(home / "build", limits=limits)
    tokens = Tokens(store, clock=clock)
    token = tokens.mint("admin")
    tasks = TaskBoard(minimum=0.01, maximum=0.1)
    app = build_app(
        ApiDeps(
            store=store,
            tokens=tokens,
            deploy=DeployService(store, builder, limits),
            builder=builder,
            logbook=NoLogs(),
            max_bundle_bytes=limits.max_bundle_bytes,
            resources=resources,
            tasks=tasks,
            telemetry=telemetry,
        )
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    replicas = ReadyReplicas(store)
    control = Controller(
        store, replicas, replicas, url_for=lambda ns, n: f"{url}/fn/{n}/", tasks=tasks
    )
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, ws="none")
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    if controller:
        control.start()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    session = aiohttp.ClientSession()
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield Api(url, token, store, session, tokens, tasks)
    finally:
        await session.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await control.close()
        await tasks.close()
        store.close()
        sock.close()
