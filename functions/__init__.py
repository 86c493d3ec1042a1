"""The runtime that hosts a user's function, and the SDK its handler sees.

A handler is ``def handle(req)`` or ``async def handle(req)`` taking a ``Request`` and
returning str, bytes, dict/list (JSON), None (204), a ``Response`` or ``(body, status)``;
an ASGI application works too. ``python -m fnmesh.functions`` serves one (``main``),
``app`` loads it and answers requests, ``templates`` holds what ``fn init`` writes and
``examples/`` holds example functions.

Cold starts matter here: this package imports only the standard library, httptools and
``fnmesh.platform.http``.
"""

from fnmesh.functions.calls import CallError, Reply, call, call_async
from fnmesh.functions.request import BadRequest, Headers, HttpError, Request
from fnmesh.functions.response import Response

__all__ = [
    "BadRequest",
    "CallError",
    "Headers",
    "HttpError",
    "Reply",
    "Request",
    "Response",
    "call",
    "call_async",
]
