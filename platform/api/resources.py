"""Functions, revisions and traffic splits: read and write through the store."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fnmesh.platform.api.access import scope_of
from fnmesh.platform.api.deps import deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.model import DEFAULT_NAMESPACE, ValidationError, check_name
from fnmesh.platform.model.errors import FieldError
from fnmesh.platform.model.manifest import parse_function
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.model.resources import API_VERSION, LABEL_FUNCTION
from fnmesh.platform.store.secrets import missing_references


def _path(request: Request) -> tuple[str, str | None]:
    namespace = request.path_params.get("namespace", DEFAULT_NAMESPACE)
    name = request.path_params.get("name")
    for value, what in ((namespace, "namespace"), (name, "name")):
        if value is not None:
            problem = check_name(value, what=what, limit=63)
            if problem:
                raise ApiError(400, problem)
    return namespace, name


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as error:
        raise ApiError(400, f"the request body is not JSON: {error}") from None


def _list(kind: str, items: list[dict[str, Any]], version: int) -> JSONResponse:
    return JSONResponse(
        {
            "apiVersion": API_VERSION,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(version)},
            "items": items,
        }
    )


async def list_all_functions(request: Request) -> JSONResponse:
    items, version = deps(request).store.list("Function", scope_of(request))
    return _list("Function", items, version)


async def list_functions(request: Request) -> JSONResponse:
    namespace, _ = _path(request)
    items, version = deps(request).store.list("Function", namespace)
    return _list("Function", items, version)


async def create_function(request: Request) -> JSONResponse:
    namespace, _ = _path(request)
    function = _parse(await _body(request), None, namespace, deps(request).resources)
    body = function.to_dict()
    check_references(request, body["spec"], namespace)
    body["metadata"].pop("resourceVersion", None)
    return JSONResponse(deps(request).store.create(body), status_code=201)


async def get_function(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    assert name is not None
    return JSONResponse(deps(request).store.get("Function", namespace, name))


async def replace_function(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    function = _parse(await _body(request), name, namespace, deps(request).resources)
    store = deps(request).store
    current = store.get("Function", namespace, name or "")
    body = function.to_dict()
    check_references(request, body["spec"], namespace)
    if function.spec.artifact is None and (current.get("spec") or {}).get("artifact"):
        body["spec"]["artifact"] = current["spec"]["artifact"]  # keep the deployed code
    body["metadata"].setdefault("resourceVersion", current["metadata"]["resourceVersion"])
    return JSONResponse(store.update(body))


async def delete_function(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    return JSONResponse(deps(request).store.delete("Function", namespace, name or ""))


async def list_revisions(request: Request) -> JSONResponse:
    namespace, _ = _path(request)
    function = request.query_params.get("function")
    labels = {LABEL_FUNCTION: function} if function else None
    items, version = deps(request).store.list("Revision", namespace, labels)
    return _list("Revision", items, version)


async def get_revision(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    return JSONResponse(deps(request).store.get("Revision", namespace, name or ""))


async def get_traffic_split(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    return JSONResponse(deps(request).store.get("TrafficSplit", namespace, name or ""))


def _parse(data: Any, name: str | None, namespace: str, resources: ResourcePolicy | None) -> Any:
    try:
        function = parse_function(data, name=name, namespace=namespace)
        refusals = (
            resources.refusals(function.spec.resources, "spec.resources") if resources else []
        )
        if refusals:
            raise ValidationError(refusals, "the Function")
    except ValidationError as error:
        raise ApiError(422, error.render(), error.errors) from None
    return function


def check_references(request: Request, spec: dict[str, Any], namespace: str) -> None:
    """Refuse a Function whose spec names a secret, or a key of one, the namespace lacks."""
    missing = missing_references(
        deps(request).secrets,
        namespace,
        list(spec.get("secrets") or []),
        dict(spec.get("secretEnv") or {}),
        prefix="spec.",
    )
    if missing:
        message = "the Function names secrets that are missing: "
        raise ApiError(422, message + "; ".join(str(e) for e in missing), missing)


ACCESS_API_VERSION = "access.smi-spec.io/v1alpha3"


def _check_traffic_target(data: Any, namespace: str) -> dict[str, Any]:
    """An SMI TrafficTarget: who (service accounts) may call which service account."""
    causes: list[FieldError] = []
    if not isinstance(data, dict):
        raise ApiError(422, "a TrafficTarget must be an object (apiVersion, kind, metadata, spec)")
    if data.get("apiVersion") != ACCESS_API_VERSION:
        causes.append(FieldError("apiVersion", f"must be {ACCESS_API_VERSION!r}"))
    if data.get("kind") != "TrafficTarget":
        causes.append(FieldError("kind", "must be 'TrafficTarget'"))
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    problem = check_name(meta.get("name"), what="name", limit=63)
    if problem:
        causes.append(FieldError("metadata.name", problem))
    if meta.get("namespace", namespace) != namespace:
        causes.append(FieldError("metadata.namespace", f"must be {namespace!r} (the URL's)"))
    spec: dict[str, Any] = data["spec"] if isinstance(data.get("spec"), dict) else {}
    destination = spec.get("destination")
    if (
        not isinstance(destination, dict)
        or destination.get("kind") != "ServiceAccount"
        or not (destination.get("name"))
    ):
        causes.append(FieldError("spec.destination", "must be {kind: ServiceAccount, name: ...}"))
    sources = spec.get("sources")
    if (
        not isinstance(sources, list)
        or not sources
        or not all(
            isinstance(s, dict) and s.get("kind") == "ServiceAccount" and s.get("name")
            for s in sources
        )
    ):
        causes.append(FieldError("spec.sources", "must list {kind: ServiceAccount, name: ...}"))
    if not isinstance(spec.get("rules", []), list):
        causes.append(FieldError("spec.rules", "must be a list"))
    if causes:
        raise ApiError(422, "the TrafficTarget is invalid", causes)
    body = dict(data)
    body["metadata"] = {**meta, "namespace": namespace}
    body["spec"] = {**spec, "rules": spec.get("rules") or []}
    return body


async def list_traffic_targets(request: Request) -> JSONResponse:
    namespace, _ = _path(request)
    items, version = deps(request).store.list("TrafficTarget", namespace)
    return _list("TrafficTarget", items, version)


async def create_traffic_target(request: Request) -> JSONResponse:
    namespace, _ = _path(request)
    body = _check_traffic_target(await _body(request), namespace)
    return JSONResponse(deps(request).store.create(body), status_code=201)


async def delete_traffic_target(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    return JSONResponse(deps(request).store.delete("TrafficTarget", namespace, name or ""))
