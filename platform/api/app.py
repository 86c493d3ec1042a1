"""The API application: every route in one table, middleware assembled once."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from fnmesh.platform.api import (
    logs,
    metrics,
    observe,
    resources,
    rollouts,
    secrets,
    source,
    tokens,
)
from fnmesh.platform.api.access import Endpoint, needs
from fnmesh.platform.api.auth import BearerAuth
from fnmesh.platform.api.deps import ApiDeps
from fnmesh.platform.api.errors import ApiError, failure
from fnmesh.platform.api.openapi import document
from fnmesh.platform.git.app import GitApp
from fnmesh.platform.model.access import Verb
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


TOKENS = GROUP + "/tokens"
READ: Verb = "read"
WRITE: Verb = "write"


def route(path: str, endpoint: Endpoint, method: str, needed: tuple[str, Verb]) -> Route:
    return Route(path, needs(*needed)(endpoint), methods=[method])


def listing(path: str, endpoint: Endpoint, resource: str) -> Route:
    """A list across namespaces: a token limited to one sees that one."""
    return Route(path, needs(resource, READ, across=True)(endpoint), methods=["GET"])


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    route("/metrics", metrics.platform_metrics, "GET", ("metrics", READ)),
    listing(GROUP + "/functions", resources.list_all_functions, "functions"),
    route(NS + "/functions", resources.list_functions, "GET", ("functions", READ)),
    route(NS + "/functions", resources.create_function, "POST", ("functions", WRITE)),
    route(NS + "/functions/{name}", resources.get_function, "GET", ("functions", READ)),
    route(NS + "/functions/{name}", resources.replace_function, "PUT", ("functions", WRITE)),
    route(NS + "/functions/{name}", resources.delete_function, "DELETE", ("functions", WRITE)),
    route(NS + "/functions/{name}/source", source.upload_source, "POST", ("source", WRITE)),
    route(NS + "/functions/{name}/builds/{build}/log", source.build_log, "GET", ("builds", READ)),
    route(NS + "/functions/{name}/logs", logs.function_logs, "GET", ("logs", READ)),
    route(NS + "/functions/{name}/stats", observe.function_stats, "GET", ("stats", READ)),
    route(NS + "/functions/{name}/tap", observe.function_tap, "GET", ("tap", READ)),
    route(NS + "/functions/{name}/traffic", rollouts.set_traffic, "PUT", ("traffic", WRITE)),
    route(NS + "/functions/{name}/rollback", rollouts.rollback, "POST", ("traffic", WRITE)),
    route(NS + "/functions/{name}/promote", rollouts.promote, "POST", ("traffic", WRITE)),
    route(NS + "/revisions", resources.list_revisions, "GET", ("revisions", READ)),
    route(NS + "/revisions/{name}", resources.get_revision, "GET", ("revisions", READ)),
    route(NS + "/trafficsplits/{name}", resources.get_traffic_split, "GET", ("traffic", READ)),
    route(NS + "/traffictargets", resources.list_traffic_targets, "GET", ("traffic", READ)),
    route(NS + "/traffictargets", resources.create_traffic_target, "POST", ("traffic", WRITE)),
    route(
        NS + "/traffictargets/{name}",
        resources.delete_traffic_target,
        "DELETE",
        ("traffic", WRITE),
    ),
    route(NS + "/secrets", secrets.list_secrets, "GET", ("secrets", READ)),
    route(NS + "/secrets", secrets.create_secret, "POST", ("secrets", WRITE)),
    route(NS + "/secrets/{name}", secrets.get_secret, "GET", ("secrets", READ)),
    route(NS + "/secrets/{name}", secrets.replace_secret, "PUT", ("secrets", WRITE)),
    route(NS + "/secrets/{name}", secrets.delete_secret, "DELETE", ("secrets", WRITE)),
    route(TOKENS, tokens.list_tokens, "GET", ("tokens", READ)),
    route(TOKENS, tokens.create_token, "POST", ("tokens", WRITE)),
    route(TOKENS + "/{id}", tokens.revoke_token, "DELETE", ("tokens", WRITE)),
    Mount("/git", app=GitApp()),  # git smart HTTP; basic auth and roles of its own
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
