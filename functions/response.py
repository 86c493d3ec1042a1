"""What a handler returns, and how each supported return value becomes an HTTP response.

| handler returns          | response                                              |
| ------------------------ | ----------------------------------------------------- |
| ``str``                  | 200, ``text/plain; charset=utf-8``                     |
| ``bytes``                | 200, ``application/octet-stream``                      |
| ``dict`` or ``list``     | 200, ``application/json``                              |
| ``None``                 | 204, no body                                           |
| ``Response``             | as given                                              |
| ``(body, status)``       | ``body`` as above, with ``status``                     |
| ``(body, status, hdrs)`` | the same, plus headers                                |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fnmesh.platform.http import Response as HttpResponse

TEXT = b"text/plain; charset=utf-8"
OCTETS = b"application/octet-stream"
JSON = b"application/json"
SUPPORTED = "str, bytes, dict, list, None, a Response or a (body, status) tuple"


class Response:
    """A response with a body (``bytes`` or ``str``), a status and headers."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, body: bytes | str = b"", status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """``obj`` serialized as JSON, with ``content-type: application/json``."""
        body = json.dumps(obj, ensure_ascii=False).encode()
        return cls(body, status, {"content-type": "application/json", **(headers or {})})

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


class UnsupportedReturn(TypeError):
    """The handler's return value cannot be turned into a response; says why and how."""


def to_http(result: object) -> HttpResponse:
    """The HTTP response for a handler's return value (see the module docstring)."""
    if isinstance(result, tuple):
        return _from_tuple(result)
    return _body(result, 200, None)


def _from_tuple(result: tuple[Any, ...]) -> HttpResponse:
    if len(result) not in (2, 3):
        raise UnsupportedReturn(
            f"the function returned a tuple of {len(result)} items; return (body, status)"
            " or (body, status, headers)"
        )
    body, status = result[0], result[1]
    headers = result[2] if len(result) == 3 else None
    if isinstance(body, Response):
        raise UnsupportedReturn("the function returned a Response inside a tuple; return it alone")
    if headers is not None and not isinstance(headers, Mapping):
        raise UnsupportedReturn(
            f"the function returned headers of type {type(headers).__name__};"
            " use a dict of str to str"
        )
    return _body(body, status, headers)


def _body(body: object, status: object, headers: Mapping[str, str] | None) -> HttpResponse:
    code = _status(status)
    if isinstance(body, Response):
        return _from_response(body)
    if body is None:
        return HttpResponse(204 if status == 200 else code, _headers(headers, None))
    if isinstance(body, str):
        return HttpResponse(code, _headers(headers, TEXT), body.encode())
    if isinstance(body, bytes | bytearray | memoryview):
        return HttpResponse(code, _headers(headers, OCTETS), bytes(body))
    if isinstance(body, dict | list):
        try:
            encoded = json.dumps(body, ensure_ascii=False).encode()
        except (TypeError, ValueError) as error:
            raise UnsupportedReturn(
                f"the function returned a {type(body).__name__} that is not JSON-serializable"
                f" ({error}); return plain JSON values or bytes"
            ) from None
        return HttpResponse(code, _headers(headers, JSON), encoded)
    raise UnsupportedReturn(f"the function returned {type(body).__name__}; return {SUPPORTED}")


def _from_response(response: Response) -> HttpResponse:
    body = response.body
    if isinstance(body, str):
        return HttpResponse(
            _status(response.status), _headers(response.headers, TEXT), body.encode()
        )
    if isinstance(body, bytes | bytearray | memoryview):
        headers = _headers(response.headers, OCTETS if body else None)
        return HttpResponse(_status(response.status), headers, bytes(body))
    raise UnsupportedReturn(
        f"the function returned a Response whose body is {type(body).__name__};"
        " use bytes or str (or Response.json(obj) for JSON)"
    )


def _status(status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise UnsupportedReturn(
            f"the function returned status {status!r}; use an int from 100 to 599"
        )
    return status


def _headers(
    headers: Mapping[str, str] | None, content_type: bytes | None
) -> list[tuple[bytes, bytes]]:
    encoded: list[tuple[bytes, bytes]] = []
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise UnsupportedReturn(
                f"the function returned header {name!r}: {value!r}; names and values must be str"
            )
        if not _is_token(name) or "\r" in value or "\n" in value:
            raise UnsupportedReturn(
                f"the function returned header {name!r} with a name or value that cannot be sent"
                " (no spaces, colons or line breaks in names, no line breaks in values)"
            )
        encoded.append((name.lower().encode("latin-1"), value.encode("latin-1", "replace")))
    if content_type is not None and not any(name == b"content-type" for name, _ in encoded):
        encoded.append((b"content-type", content_type))
    return encoded


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(name: str) -> bool:
    return bool(name) and all(char in _TOKEN for char in name)
