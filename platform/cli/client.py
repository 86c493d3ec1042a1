"""The control-plane API client, over the standard library's ``http.client``.

``ApiClient`` speaks the API of ``fn up`` (JSON resources, Kubernetes ``Status`` errors,
streamed NDJSON and text); ``send`` is the plain request underneath, also used to reach
the gateway. Connection problems, refused tokens and error answers become ``CliError``s
that say what to do.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fnmesh.platform.cli.context import Context
from fnmesh.platform.cli.errors import FAILURE, USAGE, CliError

GROUP = "/apis/fnmesh.dev/v1alpha1"
DEFAULT_TIMEOUT = 30.0
# 4xx answers that mean "fix your input" (exit 2); any other failure exits 1
_INPUT_CODES = frozenset({400, 409, 413, 415, 422})


@dataclass(frozen=True, slots=True)
class Cause:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ApiFailure(CliError):
    """A non-2xx answer from the API, with the server's message and causes."""

    def __init__(self, status: int, reason: str, message: str, causes: list[Cause]) -> None:
        self.status = status
        self.reason = reason
        self.server_message = message
        self.causes = causes
        super().__init__(self.render(), USAGE if status in _INPUT_CODES else FAILURE)

    def render(self) -> str:
        lines = [self.server_message]
        # the message often lists the causes already; name each one once
        lines += [f"  {cause}" for cause in self.causes if str(cause) not in self.server_message]
        return "\n".join(lines)


def namespaced(namespace: str, *parts: str) -> str:
    """The API path of a resource (or collection) in ``namespace``."""
    tail = "/".join(quote(part, safe="") for part in parts)
    return f"{GROUP}/namespaces/{quote(namespace, safe='')}/{tail}"


def with_query(path: str, query: Mapping[str, str | int | bool | None] | None) -> str:
    if not query:
        return path
    pairs = {
        key: (str(value).lower() if isinstance(value, bool) else str(value))
        for key, value in query.items()
        if value is not None
    }
    return f"{path}?{urlencode(pairs)}" if pairs else path


def unreachable(what: str, url: str, error: OSError) -> CliError:
    if isinstance(error, TimeoutError):
        return CliError(f"{what} at {url} did not answer in time: is `fn up` running?")
    return CliError(f"cannot reach {what} at {url}: is `fn up` running?")


@contextmanager
def send(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    what: str = "the platform API",
) -> Iterator[http.client.HTTPResponse]:
    """Send one request; yield the response (any status) while the connection is open.

    ``timeout`` bounds connecting and each read (None: wait as long as it takes).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{url!r} is not an http(s) URL: check the context file")
    base = f"{parts.scheme}://{parts.netloc}"
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        try:
            connection.request(method, target, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
        except OSError as error:
            raise unreachable(what, base, error) from None
        except http.client.HTTPException as error:
            raise CliError(f"{what} at {base} broke off the request: {error!r}") from None
        yield response
    finally:
        connection.close()


class ApiClient:
    """The platform's API, authenticated with the context's token."""

    def __init__(self, context: Context, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.context = context
        self.timeout = timeout

    def get_json(
        self, path: str, query: Mapping[str, str | int | bool | None] | None = None
    ) -> Any:
        return self.call_json("GET", with_query(path, query))

    def delete_json(self, path: str) -> Any:
        return self.call_json("DELETE", path)

    def call_json(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        with self.open(method, path, body=data, headers=headers, timeout=self.timeout) as response:
            raw = self.read(response)
        try:
            return json.loads(raw)
        except ValueError:
            raise CliError(
                f"the platform API answered {method} {path} with something that is not JSON"
            ) from None

    def get_text(
        self, path: str, query: Mapping[str, str | int | bool | None] | None = None
    ) -> str:
        with self.open("GET", with_query(path, query), timeout=self.timeout) as response:
            return self.read(response).decode("utf-8", errors="replace")

    @contextmanager
    def open(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Iterator[http.client.HTTPResponse]:
        """Send a request; yield a 2xx response to read from, raise for anything else.

        ``timeout`` bounds connecting and each read; None waits as long as it takes.
        """
        sent = {**(headers or {}), "Authorization": f"Bearer {self.context.token}"}
        url = self.context.api + path
        with send(method, url, body=body, headers=sent, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                raise self.failure(response)
            yield response

    def read(self, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read()
        except (OSError, http.client.HTTPException) as error:
            raise self.lost(error) from None

    def lost(self, error: BaseException) -> CliError:
        if isinstance(error, TimeoutError):
            return CliError(f"the platform API at {self.context.api} stopped answering")
        return CliError(
            f"the connection to the platform API at {self.context.api} broke: {error!r}"
        )

    def failure(self, response: http.client.HTTPResponse) -> CliError:
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        if response.status == 401:
            why = parse_failure(response.status, response.reason, raw).server_message
            why = why.removeprefix("the bearer token was refused: ")
            return CliError(
                f"the token in {self.context.path} was refused: {why}\n"
                "  ($FNMESH_TOKEN, when set, is sent instead; is it from another platform,"
                " expired or revoked? `fn up` writes a fresh admin token when it starts)"
            )
        return parse_failure(response.status, response.reason, raw)


def parse_failure(status: int, reason: str, raw: bytes) -> ApiFailure:
    """An error answer as ApiFailure: the Status body's message and causes, or the raw text."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        causes = [
            Cause(str(item.get("field") or ""), str(item.get("message") or ""))
            for item in (details or {}).get("causes") or []
            if isinstance(item, dict)
        ]
        return ApiFailure(status, str(body.get("reason") or reason), body["message"], causes)
    text = raw.decode("utf-8", errors="replace").strip()
    message = f"the platform API answered {status} {reason}"
    return ApiFailure(status, reason, f"{message}: {text[:500]}" if text else message, [])


def set_read_timeout(response: http.client.HTTPResponse, seconds: float | None) -> None:
    """Bound the coming reads of ``response`` (e.g. to what is left of a deadline).

    Reaches the socket under the response's buffered reader; where there is none, the
    connection's own timeout stays in force.
    """
    sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)
