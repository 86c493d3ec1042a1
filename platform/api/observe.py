"""Golden metrics (``fn stat``) and live tap (``fn tap``) of a function's revisions.

Tap events reach a viewer cut down by ``redact_tap`` (no payload, headers or query);
deployers and admins, who could deploy code that reads requests anyway, see them whole.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from fnmesh.platform.api.access import grant_of
from fnmesh.platform.api.deps import Telemetry, deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _path
from fnmesh.platform.model.access import redact_tap, sees_tap_whole
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.telemetry.tap import TapFilter


def _telemetry(request: Request) -> Telemetry:
    found = deps(request).telemetry
    if found is None:
        raise ApiError(503, "this platform does not collect mesh telemetry")
    return found


async def function_stats(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    assert name is not None
    api = deps(request)
    telemetry = _telemetry(request)
    api.store.get("Function", namespace, name)
    raw = request.query_params.get("window", "60")
    try:
        window = float(raw)
    except ValueError:
        raise ApiError(400, f"window must be a number of seconds, not {raw!r}") from None
    if not 1 <= window <= 600:
        raise ApiError(400, "window must be between 1 and 600 seconds")
    revisions, _ = api.store.list("Revision", namespace, {LABEL_FUNCTION: name})
    rows = []
    for item in revisions:
        golden = telemetry.golden(namespace, item["metadata"]["name"], window)
        row: dict[str, object] = {"revision": item["metadata"]["name"], "window": window}
        if golden is not None:
            row.update(
                requests=golden.requests,
                rps=round(golden.rps, 3),
                successRate=golden.success_rate,
                p50Ms=golden.p50_ms,
                p95Ms=golden.p95_ms,
                p99Ms=golden.p99_ms,
            )
        rows.append(row)
    return JSONResponse({"function": name, "namespace": namespace, "revisions": rows})


async def function_tap(request: Request) -> Response:
    namespace, name = _path(request)
    assert name is not None
    api = deps(request)
    telemetry = _telemetry(request)
    api.store.get("Function", namespace, name)
    query = request.query_params
    tap_filter = TapFilter(
        namespace=namespace,
        function=name,
        revision=query.get("revision"),
        method=query.get("method"),
        path_prefix=query.get("path"),
    )
    whole = sees_tap_whole(grant_of(request))
    key, session = telemetry.taps.open(tap_filter)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield json.dumps({"event": "started", "function": name}).encode() + b"\n"
            while True:
                try:
                    event = await asyncio.wait_for(session.queue.get(), 15)
                except TimeoutError:
                    yield b"{}\n"  # keep-alive; a vanished client is noticed here
                    continue
                shown = event if whole else redact_tap(event)
                yield json.dumps(shown).encode() + b"\n"
        finally:
            telemetry.taps.close(key)

    return StreamingResponse(stream(), media_type="application/x-ndjson")
