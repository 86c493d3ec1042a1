"""A function's replica output: the last lines, or a live follow."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from fnmesh.platform.api.deps import deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _path


async def function_logs(request: Request) -> Response:
    namespace, name = _path(request)
    assert name is not None
    api = deps(request)
    api.store.get("Function", namespace, name)  # 404 for an unknown function
    raw_tail = request.query_params.get("tail", "100")
    if not raw_tail.isdigit():
        raise ApiError(400, f"tail must be a whole number of lines, not {raw_tail!r}")
    tail = min(int(raw_tail), 100_000)
    follow = request.query_params.get("follow", "false").lower() in ("1", "true", "yes")
    if not follow:
        lines = api.logbook.tail(namespace, name, tail)
        return PlainTextResponse("".join(f"{line}\n" for line in lines))

    async def stream() -> AsyncIterator[bytes]:
        async for line in api.logbook.follow(namespace, name, tail):
            yield f"{line}\n".encode()

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")
