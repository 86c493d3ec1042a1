"""Calling another function from a handler, through this replica's proxy.

    from fnmesh.functions import call

    reply = call("inventory", "/items/42")                 # same namespace
    reply = call("billing.finance", "/charge", json={...})  # <function>.<namespace>
    if reply.ok:
        item = reply.json()

The request goes to the replica's proxy over a Unix socket only this runtime can reach
(``FNMESH_OUTBOUND``); the proxy sends it on over mTLS as this function's own identity,
so the callee's authorization (SMI TrafficTargets) sees who calls. ``call_async`` is the
same for ``async def`` handlers. Retries, timeouts and load balancing are the proxy's.
"""

from __future__ import annotations

import asyncio
import http.client
import json as jsonlib
import os
import socket
from dataclasses import dataclass
from typing import Any

OUTBOUND = "FNMESH_OUTBOUND"


class CallError(Exception):
    """The call could not be made at all (not running on the mesh, proxy unreachable)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


def call(
    function: str,
    path: str = "/",
    *,
    method: str | None = None,
    data: bytes | str | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """Call ``function`` (``name`` or ``name.namespace``) at ``path``; the reply, any status."""
    target = os.environ.get(OUTBOUND)
    if not target:
        raise CallError(f"{OUTBOUND} is not set: function calls work inside the platform only")
    body: bytes | None
    sent = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()
        sent.setdefault("content-type", "application/json")
    else:
        body = data.encode() if isinstance(data, str) else data
    verb = method or ("POST" if body is not None else "GET")
    if not path.startswith("/"):
        path = "/" + path
    connection = _UnixConnection(target, timeout)
    try:
        connection.request(verb, path, body=body, headers={"host": function, **sent})
        response = connection.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    except OSError as error:
        raise CallError(f"calling {function} failed: {error}") from error
    finally:
        connection.close()


async def call_async(function: str, path: str = "/", **options: Any) -> Reply:
    """``call`` for ``async def`` handlers (runs in a worker thread)."""
    return await asyncio.to_thread(call, function, path, **options)
