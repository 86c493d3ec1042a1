"""What a handler receives: ``Request``, its ``Headers``, and the errors it may raise.

Parsing is lazy: the path, the query and the header map are built on first use, so a
handler that reads only the body pays for nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fnmesh.platform.http import Request as HttpRequest


class HttpError(Exception):
    """Raise in a handler to answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequest(HttpError):
    """The request cannot be handled as sent (answered with 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class Headers(Mapping[str, str]):
    """Request headers: a read-only, case-insensitive mapping of str to str.

    A header sent more than once maps to its values joined with ``", "``;
    ``get_all(name)`` gives them one by one.
    """

    __slots__ = ("_map", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._map: dict[str, str] | None = None

    def _items(self) -> dict[str, str]:
        if self._map is None:
            found: dict[str, str] = {}
            for name, value in self._raw:
                key = name.decode("latin-1").lower()
                text = value.decode("latin-1")
                found[key] = f"{found[key]}, {text}" if key in found else text
            self._map = found
        return self._map

    def __getitem__(self, name: str) -> str:
        return self._items()[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in the order they were sent."""
        key = name.lower().encode("latin-1")
        return [value.decode("latin-1") for raw, value in self._raw if raw.lower() == key]

    def __repr__(self) -> str:
        return f"Headers({self._items()!r})"


class Request:
    """One HTTP request to the function.

    ``method`` (``"GET"``), ``path`` (percent-decoded, ``"/things/1"``), ``query``
    (``dict[str, str]``, the last value of a repeated parameter wins), ``query_params``
    (every ``(name, value)`` pair in order), ``headers`` (case-insensitive), ``body``
    (bytes), ``text`` (the body as UTF-8), ``json()`` and ``request_id``.
    """

    __slots__ = ("_path", "_query_params", "_target", "body", "headers", "method", "request_id")

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: str,
    ) -> None:
        self.method = method
        self.body = body
        self.headers = Headers(headers)
        self.request_id = request_id
        self._target = target
        self._path: str | None = None
        self._query_params: list[tuple[str, str]] | None = None

    @classmethod
    def from_http(cls, request: HttpRequest, request_id: str) -> Request:
        return cls(request.method, request.target, request.headers, request.body, request_id)

    @property
    def path(self) -> str:
        if self._path is None:
            raw = self._target.partition(b"?")[0].decode("latin-1") or "/"
            if "%" in raw:
                from urllib.parse import unquote

                raw = unquote(raw)
            self._path = raw
        return self._path

    @property
    def query_params(self) -> list[tuple[str, str]]:
        if self._query_params is None:
            query = self._target.partition(b"?")[2]
            if query:
                from urllib.parse import parse_qsl

                self._query_params = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            else:
                self._query_params = []
        return self._query_params

    @property
    def query(self) -> dict[str, str]:
        return dict(self.query_params)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8; BadRequest (400) when it is not."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRequest(
                f"the request body is not valid UTF-8 text (byte {error.start}); send UTF-8"
            ) from None

    def json(self) -> Any:
        """The body parsed as JSON; BadRequest (400) with the reason when it is not JSON."""
        if not self.body.strip():
            raise BadRequest(
                "the request body is empty; send a JSON document (content-type: application/json)"
            )
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadRequest(
                f"the request body is not valid JSON ({error}); send a JSON document"
                " (content-type: application/json)"
            ) from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self._target.decode('latin-1')} id={self.request_id}>"
