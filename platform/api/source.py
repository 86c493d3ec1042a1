"""Source upload: a gzip'ed tar in, the build log streamed out as NDJSON lines.

The body is spooled to a file in the builder's scratch space under the platform home as it
arrives, refused (413) the moment it passes ``max_bundle_bytes``; it never sits in memory
whole. Checking the bundle (inflating and parsing it) runs in a thread, so a bundle that
unpacks to hundreds of megabytes keeps no other request waiting. The file is removed when
its build is over, or when the upload is refused.

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
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from fnmesh.platform.api.access import scope_of
from fnmesh.platform.api.deps import ApiDeps, deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _path
from fnmesh.platform.build import BuildFailed, BundleError
from fnmesh.platform.deploy import DeployConflict, NameMismatch
from fnmesh.platform.deploy.service import new_build_id
from fnmesh.platform.model import Manifest, ValidationError
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.store import NotFound

_END = object()


def _too_large(limit: int, size: int | None = None) -> ApiError:
    what = f"{size} bytes, over" if size is not None else "over"
    return ApiError(
        413,
        f"the source is {what} the limit of {limit} bytes: leave files out with "
        ".fnignore, or raise build.max_bundle_bytes",
    )


class SpooledUpload:
    """A new file under ``folder`` that the body is written to, chunk by chunk."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # <pid>-...: the builder removes what a dead process left behind
        self.path = folder / f"{os.getpid()}-upload-{secrets.token_hex(6)}.bundle"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._out = open(fd, "wb", buffering=0)  # noqa: SIM115 (closed by close/remove)
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._out.write(chunk)

    def close(self) -> None:
        self._out.close()

    def remove(self) -> None:
        self._out.close()
        self.path.unlink(missing_ok=True)


async def spool_limited(request: Request, limit: int, folder: Path) -> SpooledUpload:
    """The body, written to a file as it arrives; 413 as soon as it passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, int(declared))
    upload = await asyncio.to_thread(SpooledUpload, folder)
    try:
        async for chunk in request.stream():
            if upload.size + len(chunk) > limit:
                raise _too_large(limit)
            upload.write(chunk)
        upload.close()
    except BaseException:
        await asyncio.to_thread(upload.remove)
        raise
    return upload


async def upload_source(request: Request) -> Response:
    namespace, name = _path(request)
    api = deps(request)
    upload = await spool_limited(request, api.max_bundle_bytes, api.builder.tmp)
    try:
        if not upload.size:
            raise ApiError(
                400, "the request body is empty: send the function folder as a gzip'ed tar"
            )
        try:
            manifest = await asyncio.to_thread(api.deploy.prepare, namespace, name, upload.path)
        except BundleError as error:
            raise ApiError(422, f"the source was refused: {error}") from None
        except ValidationError as error:
            raise ApiError(422, error.render(), error.errors) from None
        except NameMismatch as error:
            raise ApiError(422, str(error)) from None
    except BaseException:
        await asyncio.to_thread(upload.remove)
        raise
    commit = request.query_params.get("commit")
    expect = _expected_generation(request)
    try:
        api.deploy.check(manifest.namespace, manifest.name, expect)
    except DeployConflict as error:
        raise ApiError(409, str(error)) from None
    build_id = new_build_id()
    return StreamingResponse(
        _stream(api, manifest, upload, build_id, commit, expect),
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
    upload: SpooledUpload,
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
                upload.path,
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
            await asyncio.to_thread(upload.remove)
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
    api = deps(request)
    path = api.builder.log_path(build)
    if not path.exists() or (scope_of(request) is not None and not _builds_of(request, build)):
        raise ApiError(404, f"build {build} not found")
    return PlainTextResponse(path.read_text(errors="replace"))


def _builds_of(request: Request, build: str) -> bool:
    """Whether ``build`` made the URL's function or one of its revisions: build logs
    live in one folder for every namespace, so a token limited to one namespace reads
    only the builds recorded there."""
    namespace, name = _path(request)
    store = deps(request).store
    try:
        function = store.get("Function", namespace, name or "")
    except NotFound:
        return False
    revisions = store.list("Revision", namespace, {LABEL_FUNCTION: name or ""})[0]
    return any(
        ((item.get("spec") or {}).get("artifact") or {}).get("build") == build
        for item in (function, *revisions)
    )
