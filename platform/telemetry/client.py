"""Clients of the hub's read API (``reads``): the API's reader and the controller's
``Metrics``, both over mTLS with the caller's component certificate.

- ``HubClient`` is a ``TelemetryReader`` (async, pooled connections): ``fn stat`` and
  ``fn tap`` on a cluster.
- ``HttpMetrics`` is the controller's ``Metrics`` (``golden(namespace, revision,
  window)``), which is synchronous: one blocking request per rollout check (one per
  progressing canary per interval), bounded by ``timeout``. When the hub does not answer
  it returns None -- the interval neither steps nor fails -- and does not ask again for
  ``backoff`` seconds, so an outage never holds the controller's loop for long.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from fnmesh.platform.http import ConnectionPool, Request, UpstreamError
from fnmesh.platform.telemetry.reader import TelemetryUnavailable
from fnmesh.platform.telemetry.tap import TapFilter
from fnmesh.platform.telemetry.windows import Golden
from fnmesh.platform.telemetry.wire import (
    WireError,
    golden_from_wire,
    tap_filter_to_wire,
)

log = logging.getLogger("fnmesh.telemetry.client")
JSON = [(b"content-type", b"application/json")]


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.port is None:
        raise ValueError(f"the hub's URL must be https://host:port, not {url!r}")
    return parts.hostname, parts.port


def golden_path(namespace: str, revision: str, window: float) -> str:
    return f"/v1/golden/{quote(namespace, safe='')}/{quote(revision, safe='')}?window={window:g}"


def golden_of(answer: Any) -> Golden | None:
    if not isinstance(answer, dict) or "golden" not in answer:
        raise WireError("the answer has no 'golden' member")
    return golden_from_wire(answer["golden"])


class HubClient:
    """A ``TelemetryReader`` over the hub at ``url`` (``https://host:port``)."""

    def __init__(
        self,
        url: str,
        *,
        tls: ssl.SSLContext,
        server_identity: str,
        timeout: float = 5.0,
        pool: ConnectionPool | None = None,
    ) -> None:
        self.host, self.port = _host_port(url)
        self.authority = url.split("://", 1)[1].rstrip("/").encode()
        self.tls = tls
        self.server_identity = server_identity
        self.timeout = timeout
        self.pool = pool or ConnectionPool(max_idle_per_host=8)

    async def _call(
        self, method: str, path: str, body: object = None, *, timeout: float | None = None
    ) -> tuple[int, Any]:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = [(b"host", self.authority), *(JSON if body is not None else [])]
        request = Request(method, path.encode(), headers, payload)
        try:
            response = await self.pool.request(
                self.host,
                self.port,
                request,
                timeout=timeout or self.timeout,
                ssl=self.tls,
                server_hostname=self.server_identity,
            )
            answer = json.loads(response.body) if response.body else {}
        except (UpstreamError, ValueError) as error:
            raise TelemetryUnavailable(f"the telemetry hub cannot be reached: {error}") from None
        if response.status >= 500 or response.status in (401, 403):
            why = answer.get("error") if isinstance(answer, dict) else None
            raise TelemetryUnavailable(
                f"the telemetry hub answered {response.status}: {why or 'no reason given'}"
            )
        return response.status, answer

    async def read_golden(self, namespace: str, revision: str, window: float) -> Golden | None:
        status, answer = await self._call("GET", golden_path(namespace, revision, window))
        try:
            if status != 200:
                raise WireError(f"status {status}: {answer}")
            return golden_of(answer)
        except WireError as error:
            raise TelemetryUnavailable(f"the telemetry hub's answer is wrong: {error}") from None

    @contextlib.asynccontextmanager
    async def tap(self, tap_filter: TapFilter) -> AsyncIterator[RemoteTapFeed]:
        status, answer = await self._call("POST", "/v1/taps", tap_filter_to_wire(tap_filter))
        session = answer.get("session") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(session, str):
            raise TelemetryUnavailable(f"the telemetry hub opened no tap session: {answer}")
        try:
            yield RemoteTapFeed(self, session)
        finally:
            with contextlib.suppress(TelemetryUnavailable):
                await self._call("DELETE", f"/v1/taps/{session}")

    async def close(self) -> None:
        await self.pool.close()


class RemoteTapFeed:
    """A ``TapFeed`` polling one session of the hub."""

    def __init__(self, client: HubClient, session: str) -> None:
        self.client = client
        self.session = session
        self.dropped = 0

    async def next(self, timeout: float, limit: int = 500) -> list[dict[str, Any]]:
        status, answer = await self.client._call(
            "GET", f"/v1/taps/{self.session}?wait={timeout:g}", timeout=timeout + 5.0
        )
        if status != 200 or not isinstance(answer, dict):
            raise TelemetryUnavailable(f"the tap session ended: {answer}")
        events = answer.get("events")
        dropped = answer.get("dropped")
        if isinstance(dropped, int):
            self.dropped = dropped
        if not isinstance(events, list):
            return []
        return [event for event in events[:limit] if isinstance(event, dict)]


class _IdentityConnection(http.client.HTTPSConnection):
    """HTTPS to ``host:port`` checking the certificate against ``server_identity``."""

    def __init__(
        self, host: str, port: int, *, context: ssl.SSLContext, server_identity: str, timeout: float
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self.tls = context
        self.server_identity = server_identity

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.server_identity)


class HttpMetrics:
    """The controller's ``Metrics`` over the hub's read API (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        tls: ssl.SSLContext,
        server_identity: str,
        timeout: float = 1.0,
        backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = _host_port(url)
        self.tls = tls
        self.server_identity = server_identity
        self.timeout = timeout
        self.backoff = backoff
        self.clock = clock
        self._quiet_until = 0.0

    def golden(self, namespace: str, revision: str, window: float) -> Golden | None:
        if self.clock() < self._quiet_until:
            return None
        connection = _IdentityConnection(
            self.host,
            self.port,
            context=self.tls,
            server_identity=self.server_identity,
            timeout=self.timeout,
        )
        try:
            connection.request("GET", golden_path(namespace, revision, window))
            response = connection.getresponse()
            body = response.read(1 << 20)
            if response.status != 200:
                raise WireError(f"answered {response.status}: {body[:200]!r}")
            return golden_of(json.loads(body))
        except (OSError, http.client.HTTPException, ValueError) as error:
            self._quiet_until = self.clock() + self.backoff
            log.warning(
                "no golden metrics for %s/%s (asking again in %gs): %s",
                namespace,
                revision,
                self.backoff,
                error,
            )
            return None
        finally:
            connection.close()
