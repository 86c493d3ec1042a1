"""The API application: every route in one table, middleware assembled once."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from fnmesh.platform.api import logs, metrics, observe, resources, rollouts, source
from fnmesh.platform.api.auth import BearerAuth
from fnmesh.platform.api.deps import ApiDeps
from fnmesh.platform.api.errors import ApiError, failure
from fnmesh.platform.api.openapi import document
from fnmesh.platform.git.app import GitApp
from fnmesh.platform.store import StoreError

log = logging.getLogger("fnmesh.api")
GROUP = "/apis/fnmesh.dev/v1alpha1"
NS = GROUP + "/namespaces/{namespace}"


async def healthz(request: Request) -> JSONResponse:
    """200 while every background task runs; 503 naming the failing ones and why."""
    tasks = request.app.state.deps.tasks
    states = tasks.states() if tasks is not None else []
    failing = [s.to_dict() for s in states if s.state != "running"]
    body = {
        "status": "failing" if failing else "ok",
        "failing": failing,
        "tasks": len(states),
    }
    return JSONResponse(body, status_code=503 if failing else 200)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(document())


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/metrics", metrics.platform_metrics, methods=["GET"]),  # no token: for scrapers
    Route(GROUP + "/functions", resources.list_all_functions, methods=["GET"]),
    Route(NS + "/functions", resources.list_functions, methods=["GET"]),
    Route(NS + "/functions", resources.create_function, methods=["POST"]),
    Route(NS + "/functions/{name}", resources.get_function, methods=["GET"]),
    Route(NS + "/functions/{name}", resources.replace_function, methods=["PUT"]),
    Route(NS + "/functions/{name}", resources.delete_function, methods=["DELETE"]),
    Route(NS + "/functions/{name}/source", source.upload_source, methods=["POST"]),
    Route(NS + "/functions/{name}/builds/{build}/log", source.build_log, methods=["GET"]),
    Route(NS + "/functions/{name}/logs", logs.function_logs, methods=["GET"]),
    Route(NS + "/functions/{name}/stats", observe.function_stats, methods=["GET"]),
    Route(NS + "/functions/{name}/tap", observe.function_tap, methods=["GET"]),
    Route(NS + "/functions/{name}/traffic", rollouts.set_traffic, methods=["PUT"]),
    Route(NS + "/functions/{name}/rollback", rollouts.rollback, methods=["POST"]),
    Route(NS + "/functions/{name}/promote", rollouts.promote, methods=["POST"]),
    Route(NS + "/revisions", resources.list_revisions, methods=["GET"]),
    Route(NS + "/revisions/{name}", resources.get_revision, methods=["GET"]),
    Route(NS + "/trafficsplits/{name}", resources.get_traffic_split, methods=["GET"]),
    Route(NS + "/traffictargets", resources.list_traffic_targets, methods=["GET"]),
    Route(NS + "/traffictargets", resources.create_traffic_target, methods=["POST"]),
    Route(NS + "/traffictargets/{name}", resources.delete_traffic_target, methods=["DELETE"]),
    Mount("/git", app=GitApp()),  # git smart HTTP; basic auth of its own (see auth.py)
]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return failure(exc.code, exc.message, exc.causes)


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    return failure(exc.status, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    code = int(getattr(exc, "status_code", 500))
    detail = getattr(exc, "detail", "") or "request failed"
    if code == 404:
        detail = f"no such API path: {request.url.path}"
    elif code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return failure(code, str(detail))


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("API call %s %s failed", request.method, request.url.path, exc_info=exc)
    return failure(500, f"internal error: {type(exc).__name__}: {exc}")


def build_app(api: ApiDeps) -> Starlette:
    from starlette.exceptions import HTTPException

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(BearerAuth, tokens=api.tokens)],
        exception_handlers={
            ApiError: _api_error,
            StoreError: _store_error,
            HTTPException: _http_error,
            Exception: _internal,
        },
    )
    app.state.deps = api
    return app
