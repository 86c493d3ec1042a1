"""Source upload: a gzip'ed tar in, the build log streamed out as NDJSON lines.

``?ifGeneration=N`` makes the upload conditional on the function's generation being N
(0: the function must not exist yet). A precondition that no longer holds is answered
409 before the build, or, when another deploy wins while this one builds, by a result
event ``{"ok": false, "status": 409, "conflict": true}``: read the function again and
redeploy. A successful result names the build, which the new revision carries in
``spec.artifact.build``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from fnmesh.platform.api.deps import ApiDeps, deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _path
from fnmesh.platform.build import BuildFailed, BundleError
from fnmesh.platform.deploy import DeployConflict, NameMismatch
from fnmesh.platform.deploy.service import new_build_id
from fnmesh.platform.model import Manifest, ValidationError

_END = object()


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413,
            f"the source is {int(declared)} bytes, over the limit of {limit}: "
            "leave files out with .fnignore, or raise build.max_bundle_bytes",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413,
                f"the source is over the limit of {limit} bytes: leave files "
                "out with .fnignore, or raise build.max_bundle_bytes",
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def upload_source(request: Request) -> Response:
    namespace, name = _path(request)
    api = deps(request)
    bundle = await read_limited(request, api.max_bundle_bytes)
    if not bundle:
        raise ApiError(400, "the request body is empty: send the function folder as a gzip'ed tar")
    try:
        manifest = api.deploy.prepare(namespace, name, bundle)
    except BundleError as error:
        raise ApiError(422, f"the source was refused: {error}") from None
    except ValidationError as error:
        raise ApiError(422, error.render(), error.errors) from None
    except NameMismatch as error:
        raise ApiError(422, str(error)) from None
    commit = request.query_params.get("commit")
    expect = _expected_generation(request)
    try:
        api.deploy.check(manifest.namespace, manifest.name, expect)
    except DeployConflict as error:
        raise ApiError(409, str(error)) from None
    build_id = new_build_id()
    return StreamingResponse(
        _stream(api, manifest, bundle, build_id, commit, expect),
        media_type="application/x-ndjson",
    )


def _expected_generation(request: Request) -> int | None:
    raw = request.query_params.get("ifGeneration")
    if raw is None:
        return None
    if not raw.isdigit():
        raise ApiError(
            400,
            f"ifGeneration: {raw!r} is not a generation: give the function's "
            "metadata.generation as read (0 when it does not exist yet), or leave it out",
        )
    return int(raw)


async def _stream(
    api: ApiDeps,
    manifest: Manifest,
    bundle: bytes,
    build_id: str,
    commit: str | None,
    expect: int | None,
) -> AsyncIterator[bytes]:
    lines: asyncio.Queue[object] = asyncio.Queue()

    async def log(line: str) -> None:
        await lines.put({"event": "log", "line": line})

    async def run() -> None:
        try:
            result = await api.deploy.deploy(
                manifest,
                bundle,
                build_id=build_id,
                commit=commit,
                log=log,
                expect_generation=expect,
            )
            await lines.put(
                {
                    "event": "result",
                    "ok": True,
                    "build": build_id,
                    "digest": result.build.digest,
                    "function": result.function,
                    "generation": result.generation,
                }
            )
        except DeployConflict as error:
            await lines.put(
                {
                    "event": "result",
                    "ok": False,
                    "status": 409,
                    "conflict": True,
                    "build": build_id,
                    "message": str(error),
                }
            )
        except BuildFailed as error:
            await lines.put(
                {
                    "event": "result",
                    "ok": False,
                    "build": build_id,
                    "message": str(error),
                    "logTail": _tail(api, build_id),
                }
            )
        except Exception as error:  # reported to the client, which is waiting on the stream
            await lines.put(
                {
                    "event": "result",
                    "ok": False,
                    "build": build_id,
                    "message": f"deploy failed: {error}",
                    "logTail": _tail(api, build_id),
                }
            )
        finally:
            await lines.put(_END)

    task = asyncio.create_task(run())
    try:
        while (item := await lines.get()) is not _END:
            yield json.dumps(item).encode() + b"\n"
    finally:
        if not task.done():
            # the client went away: the build still finishes, so the function stays consistent
            with contextlib.suppress(Exception):
                await asyncio.shield(task)


def _tail(api: ApiDeps, build_id: str, lines: int = 30) -> list[str]:
    path = api.builder.log_path(build_id)
    if not path.exists():
        return []
    return path.read_text(errors="replace").splitlines()[-lines:]


async def build_log(request: Request) -> Response:
    build = request.path_params["build"]
    if not build.replace("-", "").isalnum():
        raise ApiError(400, f"{build!r} is not a build id")
    path = deps(request).builder.log_path(build)
    if not path.exists():
        raise ApiError(404, f"build {build} not found")
    return PlainTextResponse(path.read_text(errors="replace"))
