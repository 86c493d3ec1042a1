"""Traffic by hand, rollback and promote.

``PUT .../functions/{name}/traffic`` replaces ``spec.traffic``: weights pinned by hand
(percents summing to 100) and tags (entries at 0 %). ``POST .../rollback`` (optionally
``{"revision": NAME}``) and ``POST .../promote`` record a request the controller carries
out (``fnmesh.platform.controller.commands``); they drop weights pinned by hand, keep the
tags, and wait up to ``?wait=`` seconds (default 10) for the controller, answering 200
once it is done and 202 while it is not yet. A request that cannot be carried out is
refused with 409 before anything is written.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fnmesh.platform.api.deps import deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _body, _path
from fnmesh.platform.controller.commands import ANNOTATION_COMMAND, Command, refusal
from fnmesh.platform.controller.plan import is_preview
from fnmesh.platform.model import Function, Revision, TrafficTarget
from fnmesh.platform.model.errors import Problems
from fnmesh.platform.model.manifest import check_traffic
from fnmesh.platform.model.names import revision_number
from fnmesh.platform.model.resources import LABEL_FUNCTION, condition
from fnmesh.platform.model.schema import check
from fnmesh.platform.model.spec_schema import SPEC_FIELDS
from fnmesh.platform.model.wire import from_wire, to_wire
from fnmesh.platform.store import Conflict, Store

WAIT_DEFAULT = 10.0
WAIT_MAX = 60.0
ATTEMPTS = 5  # writes retried after a conflict with the controller


def _read(store: Store, namespace: str, name: str) -> tuple[Function, list[Revision]]:
    function = Function.from_dict(store.get("Function", namespace, name))
    items = store.list("Revision", namespace, {LABEL_FUNCTION: name})[0]
    revisions = sorted(
        (Revision.from_dict(item) for item in items), key=lambda r: revision_number(r.name) or 0
    )
    return function, revisions


async def set_traffic(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    assert name is not None
    body = await _body(request)
    if not isinstance(body, dict) or "traffic" not in body:
        raise ApiError(
            400,
            'the body must be {"traffic": [{"revision": ..., "percent": ..., "tag": ...}]} '
            '(optionally with "resourceVersion")',
        )
    store = deps(request).store
    function, revisions = _read(store, namespace, name)
    traffic = _checked_traffic(body["traffic"], name, revisions)
    meta = function.to_dict()
    meta["spec"]["traffic"] = to_wire(traffic)
    wanted = body.get("resourceVersion")
    if wanted is not None:
        meta["metadata"]["resourceVersion"] = str(wanted)
    return JSONResponse(store.update(meta))


def _checked_traffic(raw: Any, name: str, revisions: list[Revision]) -> list[TrafficTarget]:
    problems = Problems()
    spec = check({"traffic": raw}, {"traffic": SPEC_FIELDS["traffic"]}, "", problems)
    entries = spec.get("traffic") or []
    check_traffic(entries, name, "traffic", problems)
    by_name = {r.name: r for r in revisions}
    for index, entry in enumerate(entries):
        found = by_name.get(str(entry.get("revision")))
        if found is None:
            if entry.get("revision") and not problems.errors:
                problems.add(
                    f"traffic[{index}].revision",
                    f"{entry['revision']!r} does not exist: `fn revisions {name}` lists them",
                )
            continue
        ready = condition(found.status.conditions, "Ready")
        if entry.get("percent") and ready is not None and ready.status == "False":
            problems.add(
                f"traffic[{index}].revision",
                f"{found.name} failed ({ready.message}); send traffic to a revision that serves",
            )
    if problems.errors:
        raise ApiError(422, "the traffic is invalid", problems.errors)
    return [from_wire(TrafficTarget, entry) for entry in entries]


async def rollback(request: Request) -> JSONResponse:
    body = await _optional_body(request)
    revision = body.get("revision")
    if revision is not None and not isinstance(revision, str):
        raise ApiError(400, 'revision: must be a revision name, e.g. {"revision": "hello-00001"}')
    return await _command(request, "rollback", revision)


async def promote(request: Request) -> JSONResponse:
    return await _command(request, "promote", None)


async def _optional_body(request: Request) -> dict[str, Any]:
    if not await request.body():
        return {}
    body = await _body(request)
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object such as {"revision": "hello-00001"}')
    return body


async def _command(request: Request, action: str, revision: str | None) -> JSONResponse:
    namespace, name = _path(request)
    assert name is not None
    wait = _wait(request)
    store = deps(request).store
    ident = secrets.token_hex(8)
    for attempt in range(ATTEMPTS):
        function, revisions = _read(store, namespace, name)
        releases = [r for r in revisions if not is_preview(r)]
        latest = releases[-1] if releases else None
        command = Command(
            ident,
            "rollback" if action == "rollback" else "promote",
            latest.name if latest else "",
            revision,
        )
        traffic = [t for t in function.status.traffic if t.percent > 0]
        problem = refusal(command, latest, revisions, function.status.rollout, traffic)
        if problem is not None:
            raise ApiError(409, f"{action} of {namespace}/{name} refused: {problem}")
        body = function.to_dict()
        body["metadata"].setdefault("annotations", {})[ANNOTATION_COMMAND] = command.encode()
        kept = [TrafficTarget(t.revision, 0, t.tag) for t in function.spec.traffic if t.tag]
        body["spec"]["traffic"] = to_wire(kept)
        try:
            store.update(body)
            break
        except Conflict:
            if attempt == ATTEMPTS - 1:
                raise
    return await _until_done(store, namespace, name, ident, wait)


async def _until_done(
    store: Store, namespace: str, name: str, ident: str, wait: float
) -> JSONResponse:
    deadline = time.monotonic() + wait
    while True:
        current = store.get("Function", namespace, name)
        state = (current.get("status") or {}).get("rollout") or {}
        if state.get("command") == ident:
            return JSONResponse(current)
        if time.monotonic() >= deadline:
            return JSONResponse(current, status_code=202)
        await asyncio.sleep(0.02)


def _wait(request: Request) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return WAIT_DEFAULT
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"wait: must be a number of seconds, not {raw!r}") from None
    if not 0 <= value <= WAIT_MAX:
        raise ApiError(400, f"wait: must be between 0 and {WAIT_MAX:g} seconds, not {raw}")
    return value
