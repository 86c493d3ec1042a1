"""Function secrets: create or replace, list, show, delete -- values go in, never out.

A request carries a Secret in Kubernetes' shape, values base64-encoded::

    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
     "data": {"password": "czNjcjN0"}}

Every answer is a ``SecretInfo``: the name, its keys and times. No answer, error or log
line holds a value: validation names the key and the size, never the content.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from fnmesh.platform.api.deps import deps
from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.resources import _path
from fnmesh.platform.model.errors import FieldError, Problems
from fnmesh.platform.model.secrets import (
    MAX_SECRET_BYTES,
    SecretInfo,
    check_secret_data,
    check_secret_name,
)
from fnmesh.platform.store import SecretStore

# base64 grows values by 4/3; keys, JSON and metadata get a generous allowance
MAX_BODY_BYTES = MAX_SECRET_BYTES * 4 // 3 + 256 * 1024


def _store(request: Request) -> SecretStore:
    store = deps(request).secrets
    if store is None:
        raise ApiError(503, "this platform keeps no secrets (no secret store is configured)")
    return store


def _listing(items: list[SecretInfo]) -> JSONResponse:
    return JSONResponse(
        {"apiVersion": "v1", "kind": "SecretList", "items": [s.to_dict() for s in items]}
    )


async def _read_body(request: Request) -> Any:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(
                413,
                f"the secret is over {MAX_BODY_BYTES} bytes as sent; a secret holds at most "
                f"{MAX_SECRET_BYTES} bytes of values: split it into several secrets",
            )
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise ApiError(400, "the request body is not JSON: send a Secret object") from None


def parse_secret(body: Any, name: str | None) -> tuple[str, dict[str, bytes]]:
    """The name and values of a Secret body; ApiError 422 naming every bad field."""
    problems = Problems()
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a Secret object: {metadata: {name}, data: {...}}")
    if body.get("kind", "Secret") != "Secret":
        problems.add("kind", f"must be 'Secret', not {body.get('kind')!r}")
    if body.get("type", "Opaque") != "Opaque":
        problems.add("type", "must be 'Opaque' (the only type of function secret)")
    meta: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    given = meta.get("name", name)
    problem = check_secret_name(given)
    if problem:
        problems.add("metadata.name", problem)
    elif name is not None and given != name:
        problems.add("metadata.name", f"is {given!r} but the URL names {name!r}; make them agree")
    raw = body.get("data")
    data: dict[str, bytes] = {}
    if not isinstance(raw, dict):
        problems.add("data", "must map each key to its base64-encoded value")
    else:
        for key, encoded in raw.items():
            if not isinstance(encoded, str):
                problems.add(f"data.{key}", "must be a base64-encoded string")
                continue
            try:
                data[str(key)] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                problems.add(f"data.{key}", "is not valid base64: encode the value with base64")
        check_secret_data(data, problems, "data")
    if problems.errors:
        raise ApiError(422, _render(problems.errors), problems.errors)
    return str(given), data


def _render(errors: list[FieldError]) -> str:
    return "the Secret is invalid: " + "; ".join(str(e) for e in errors)


async def list_secrets(request: Request) -> JSONResponse:
    namespace, _ = _path(request)
    return _listing(_store(request).list(namespace))


async def create_secret(request: Request) -> JSONResponse:
    namespace, _ = _path(request)
    name, data = parse_secret(await _read_body(request), None)
    info = _store(request).put(namespace, name, data, replace=False)
    return JSONResponse(info.to_dict(), status_code=201)


async def get_secret(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    return JSONResponse(_store(request).info(namespace, name or "").to_dict())


async def replace_secret(request: Request) -> JSONResponse:
    namespace, name = _path(request)
    name, data = parse_secret(await _read_body(request), name)
    return JSONResponse(_store(request).put(namespace, name, data, replace=True).to_dict())


async def delete_secret(request: Request) -> JSONResponse:
    """Refused while a function of the namespace names the secret: its next replica
    could not start."""
    namespace, name = _path(request)
    store = _store(request)
    store.info(namespace, name or "")  # NotFound first, naming how to create it
    users = [
        str(item["metadata"]["name"])
        for item in deps(request).store.list("Function", namespace)[0]
        if name in ((item.get("spec") or {}).get("secrets") or [])
    ]
    if users:
        raise ApiError(
            409,
            f"secret {namespace}/{name} is used by function(s) {', '.join(users)}: remove it "
            "from their fn.yaml 'secrets' and deploy them, then delete it",
        )
    return JSONResponse(store.delete(namespace, name or "").to_dict())
