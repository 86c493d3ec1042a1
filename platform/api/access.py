"""Each route's permission: ``needs(resource, verb)`` wraps its endpoint.

The endpoint runs only when the request's grant (put there by ``BearerAuth``) may do
``verb`` on ``resource`` in the URL's namespace (``fnmesh.platform.model.access``);
otherwise the answer is 403 with a Status whose details name the role needed and the
token's role. A route that lists across namespaces (``across=True``) lets a token limited
to one namespace through, and its endpoint keeps to that namespace (``scope_of``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fnmesh.platform.api.errors import status_body
from fnmesh.platform.model.access import Denial, Grant, Verb, decide

Endpoint = Callable[[Request], Awaitable[Response]]
PERMISSION = "__fnmesh_permission__"


def grant_of(request: Request) -> Grant:
    grant = request.scope.get("state", {}).get("grant")
    if not isinstance(grant, Grant):  # BearerAuth puts one on every guarded request
        raise RuntimeError("no verified token on the request: is BearerAuth installed?")
    return grant


def scope_of(request: Request) -> str | None:
    """The one namespace the request's token is limited to, or None for all."""
    return grant_of(request).namespace


def forbidden(denial: Denial) -> JSONResponse:
    body = status_body(403, denial.message)
    body["details"] = denial.details()
    return JSONResponse(body, status_code=403)


def needs(resource: str, verb: Verb, *, across: bool = False) -> Callable[[Endpoint], Endpoint]:
    def wrap(endpoint: Endpoint) -> Endpoint:
        @wraps(endpoint)
        async def guarded(request: Request) -> Response:
            grant = grant_of(request)
            namespace = request.path_params.get("namespace")
            if across and namespace is None:
                namespace = grant.namespace
            denial = decide(grant, resource, verb, namespace)
            if denial is not None:
                return forbidden(denial)
            return await endpoint(request)

        setattr(guarded, PERMISSION, (resource, verb))
        return guarded

    return wrap
