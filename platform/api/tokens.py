"""``/apis/fnmesh.dev/v1alpha1/tokens``: create, list and revoke API tokens (admins only).

``POST`` takes ``{"role", "namespace"?, "expires"?, "name"?}`` (``expires`` as ``30d``,
``12h``, ``90m`` or ``2w``) and answers 201 with the token's record plus ``token``, the
secret, which is shown this once and never stored. ``GET`` lists records (never a secret
or a hash); ``DELETE .../tokens/{id}`` revokes (the record stays, marked revoked).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fnmesh.platform.api.deps import deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _body
from fnmesh.platform.model import check_name
from fnmesh.platform.model.access import ROLES, Grant, parse_lifetime
from fnmesh.platform.model.errors import FieldError
from fnmesh.platform.store.tokens import Tokens, stamp

FIELDS = frozenset({"role", "namespace", "expires", "name"})


def record(grant: Grant, tokens: Tokens) -> dict[str, Any]:
    """What may be shown of a token: never its secret, nor its hash."""
    used = tokens.last_used(grant.id)
    return {
        "id": grant.id,
        "name": grant.name,
        "role": grant.role,
        "namespace": grant.namespace,
        "created": grant.created,
        "expiresAt": stamp(grant.expires_at) if grant.expires_at is not None else None,
        "revokedAt": grant.revoked,
        "lastUsed": stamp(used) if used is not None else None,
    }


def _checked(body: Any) -> tuple[Any, str | None, float | None, str]:
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object such as {"role": "viewer"}')
    causes: list[FieldError] = []
    for unknown in sorted(set(body) - FIELDS):
        causes.append(FieldError(unknown, f"is not a token field ({', '.join(sorted(FIELDS))})"))
    role = body.get("role")
    if role not in ROLES:
        causes.append(FieldError("role", f"must be one of {', '.join(ROLES)}, not {role!r}"))
    namespace = body.get("namespace")
    if namespace is not None:
        problem = check_name(namespace, what="namespace", limit=63)
        if problem:
            causes.append(FieldError("namespace", problem))
    lifetime = None
    if body.get("expires") is not None:
        lifetime = parse_lifetime(body["expires"])
        if lifetime is None:
            causes.append(
                FieldError(
                    "expires",
                    f"must be a lifetime such as 30d, 12h, 90m or 2w (up to 10 years), "
                    f"not {body['expires']!r}",
                )
            )
    name = body.get("name") or ""
    if name:
        problem = check_name(name, what="name", limit=63)
        if problem:
            causes.append(FieldError("name", problem))
    if causes:
        raise ApiError(422, "the token request is invalid", causes)
    return role, namespace, lifetime, str(name)


async def create_token(request: Request) -> JSONResponse:
    role, namespace, lifetime, name = _checked(await _body(request))
    tokens = deps(request).tokens
    secret, grant = tokens.create(role, namespace=namespace, lifetime=lifetime, description=name)
    return JSONResponse({**record(grant, tokens), "token": secret}, status_code=201)


async def list_tokens(request: Request) -> JSONResponse:
    tokens = deps(request).tokens
    items = sorted(tokens.grants(), key=lambda g: (g.created, g.id))
    return JSONResponse({"kind": "TokenList", "items": [record(g, tokens) for g in items]})


async def revoke_token(request: Request) -> JSONResponse:
    token_id = request.path_params["id"]
    problem = check_name(token_id, what="token id", limit=63)
    if problem:
        raise ApiError(400, problem)
    tokens = deps(request).tokens
    return JSONResponse(record(tokens.revoke(token_id), tokens))
