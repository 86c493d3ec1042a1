"""An upload that inflates past the limits is refused while the event loop keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import uvicorn

from fnmesh.platform.api.app import build_app
from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.api.deps import ApiDeps
from fnmesh.platform.build import Builder, BuildLimits
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.store.sqlite import SqliteStore

MiB = 1024 * 1024


class NoLogs:
    def tail(self, namespace: str, function: str, lines: int) -> list[str]:
        return []

    async def follow(self, namespace: str, function: str, lines: int) -> AsyncIterator[str]:
        for line in ():
            yield line


@contextlib.asynccontextmanager
async def running_api(home: Path, limits: BuildLimits) -> AsyncIterator[tuple[str, str]]:
    store = SqliteStore(home / "state.db")
    builder = Builder(home / "build", limits=limits)
    tokens = Tokens(store)
    token = tokens.mint("admin")
    app = build_app(
        ApiDeps(
            store=store,
            tokens=tokens,
            deploy=DeployService(store, builder, limits),
            builder=builder,
            logbook=NoLogs(),
            max_bundle_bytes=limits.max_bundle_bytes,
        )
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, ws="none")
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", token
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        store.close()
        sock.close()


def inflating_bundle(members: int, each: int) -> bytes:
    """fn.yaml, then ``members`` files of ``each`` zero bytes: tiny gzip'ed, huge unpacked."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
        manifest = b"name: hello\nhandler: main:handle\n"
        info = tarfile.TarInfo("fn.yaml")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        zeros = bytes(each)
        for index in range(members):
            info = tarfile.TarInfo(f"data/zeros-{index:03}.bin")
            info.size = each
            tar.addfile(info, io.BytesIO(zeros))
    return raw.getvalue()


async def test_an_upload_that_inflates_past_the_limit_does_not_stall_the_loop(
    tmp_path: Path,
) -> None:
    bundle = inflating_bundle(members=60, each=10 * MiB)  # 600 MiB of zeros
    assert len(bundle) < 4 * MiB
    limits = BuildLimits(max_unpacked_bytes=500 * MiB)
    async with running_api(tmp_path / "home", limits) as (api, token):
        lags: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:  # how late does a 5 ms sleep wake up?
            while not stop.is_set():
                started = time.monotonic()
                await asyncio.sleep(0.005)
                lags.append(time.monotonic() - started - 0.005)

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{api}/apis/fnmesh.dev/v1alpha1/namespaces/default/functions/hello/source",
                data=io.BytesIO(bundle),
                headers={"Authorization": f"Bearer {token}"},
            ) as reply,
        ):
            status = reply.status
            body = await reply.json()
        took = time.monotonic() - started
        stop.set()
        await ticking

    assert status == 422, body
    assert "build.max_unpacked_bytes" in body["message"]
    print(f"refused in {took:.2f}s; the loop was late by at most {max(lags) * 1000:.0f} ms")
    assert took > 0.1  # the check did real work...
    assert max(lags) < min(0.1, took / 3)  # ...and the loop kept turning meanwhile
    assert list((tmp_path / "home" / "build" / "tmp").iterdir()) == []  # the spooled body is gone
