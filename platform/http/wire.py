"""Bytes on the wire: status lines, message heads, header filtering, the ``date`` value.

Pure functions of their inputs. Headers that belong to one connection (hop-by-hop) and
``content-length`` are never copied from one message to another: the writers here set
framing themselves, from the body they are given.
"""

from __future__ import annotations

import json
import time
from http import HTTPStatus

from fnmesh.platform.http.message import Request, Response

# Headers that describe one connection, not the message (RFC 9110 7.6.1), plus framing
# (content-length is set by the writer) and ``expect`` (answered by the server itself).
UNFORWARDED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"expect",
    }
)
# Tokens of the ``connection`` header that are options rather than header names.
CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b"upgrade"})

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CRLF = b"\r\n"
_CLOSE = b"connection: close\r\n"
_KEEP_ALIVE = b"connection: keep-alive\r\n"
# Responses that never carry a body nor, for 1xx and 204, a content-length.
NO_BODY_STATUS = frozenset({204, 304, *range(100, 200)})


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def _status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {_PHRASES.get(status, '')}\r\n".encode("ascii")


STATUS_LINES = {status: _status_line(status) for status in _PHRASES}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(epoch: float) -> bytes:
    """``epoch`` (seconds) as an IMF-fixdate: ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode("ascii")


def connection_names(value: bytes) -> set[bytes]:
    """Header names a ``connection`` header value marks as hop-by-hop (options excluded)."""
    names = {token.strip().lower() for token in value.split(b",")}
    names.discard(b"")
    return names - CONNECTION_OPTIONS


def without(headers: list[tuple[bytes, bytes]], names: set[bytes]) -> list[tuple[bytes, bytes]]:
    """``headers`` less those named in ``names``."""
    return [(name, value) for name, value in headers if name not in names]


def response_head(
    response: Response,
    body_length: int | None,
    *,
    close: bool,
    http10: bool,
    date: bytes | None,
    server: bytes | None,
) -> bytes:
    """Status line and headers of ``response``, with framing and connection headers set.

    ``body_length`` None leaves out ``content-length`` (a HEAD response whose length is
    not known, e.g. a proxied one).
    """
    status = response.status
    parts = [STATUS_LINES.get(status) or _status_line(status)]
    has_date = has_server = False
    for name, value in response.headers:
        if name in UNFORWARDED:
            continue
        if name == b"date":
            has_date = True
        elif name == b"server":
            has_server = True
        parts += (name, b": ", value, CRLF)
    if date is not None and not has_date:
        parts += (b"date: ", date, CRLF)
    if server is not None and not has_server:
        parts += (b"server: ", server, CRLF)
    if body_length is not None and status not in NO_BODY_STATUS:
        parts += (b"content-length: ", str(body_length).encode("ascii"), CRLF)
    if close:
        parts.append(_CLOSE)
    elif http10:
        parts.append(_KEEP_ALIVE)
    parts.append(CRLF)
    return b"".join(parts)


# Methods whose requests carry a content-length even when the body is empty.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def request_head(request: Request, host: bytes) -> bytes:
    """Request line and headers of ``request``; ``host`` is used when it has none."""
    parts = [request.method.encode("ascii"), b" ", request.target or b"/", b" HTTP/1.1\r\n"]
    has_host = False
    for name, value in request.headers:
        if name in UNFORWARDED:
            continue
        if name == b"host":
            has_host = True
        parts += (name, b": ", value, CRLF)
    if not has_host:
        parts += (b"host: ", host, CRLF)
    if request.body or request.method in _BODY_METHODS:
        parts += (b"content-length: ", str(len(request.body)).encode("ascii"), CRLF)
    parts.append(CRLF)
    return b"".join(parts)


JSON_HEADERS = ((b"content-type", b"application/json"),)


def json_error(status: int, message: str) -> Response:
    """A response with body ``{"error": message}``."""
    body = json.dumps({"error": message}).encode() + b"\n"
    return Response(status=status, headers=list(JSON_HEADERS), body=body)
