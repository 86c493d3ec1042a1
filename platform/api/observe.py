"""Golden metrics (``fn stat``) and live tap (``fn tap``) of a function's revisions.

Both read the telemetry hub through ``TelemetryReader``: the hub itself in ``fn up``, its
read API over mTLS on a cluster (``telemetry.client.HubClient``); a hub that cannot be
asked is a 503 naming why. Tap events reach a viewer cut down by ``redact_tap`` (no
payload, headers or query); deployers and admins, who could deploy code that reads
requests anyway, see them whole.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from fnmesh.platform.api.access import grant_of
from fnmesh.platform.api.deps import Telemetry, deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _path
from fnmesh.platform.model.access import redact_tap, sees_tap_whole
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.telemetry.reader import TelemetryUnavailable
from fnmesh.platform.telemetry.tap import TapFilter
from fnmesh.platform.telemetry.wire import WireError, parse_window

KEEPALIVE = 15.0  # seconds without events before an empty line is sent


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
    try:
        window = parse_window(request.query_params.get("window"))
    except WireError as error:
        raise ApiError(400, str(error)) from None
    revisions, _ = api.store.list("Revision", namespace, {LABEL_FUNCTION: name})
    rows = []
    for item in revisions:
        try:
            golden = await telemetry.read_golden(namespace, item["metadata"]["name"], window)
        except TelemetryUnavailable as error:
            raise ApiError(503, str(error)) from None
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
    session = contextlib.AsyncExitStack()
    try:  # opened before the stream starts, so a hub that is down is a 503
        feed = await session.enter_async_context(telemetry.tap(tap_filter))
    except TelemetryUnavailable as error:
        raise ApiError(503, str(error)) from None

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield json.dumps({"event": "started", "function": name}).encode() + b"\n"
            while True:
                events = await feed.next(KEEPALIVE)
                if not events:
                    yield b"{}\n"  # keep-alive; a vanished client is noticed here
                for event in events:
                    shown = event if whole else redact_tap(event)
                    yield json.dumps(shown).encode() + b"\n"
        except TelemetryUnavailable as error:
            yield json.dumps({"event": "ended", "error": str(error)}).encode() + b"\n"
        finally:
            # the stream ends by cancellation when the client goes: shield the closing
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await session.aclose()

    return StreamingResponse(stream(), media_type="application/x-ndjson")
