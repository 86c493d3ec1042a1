"""Where a function's replicas are, as the platform says (cached briefly)."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from fnmesh.platform.http import ConnectionPool, Request, UpstreamError
from fnmesh.platform.mesh.outbound import Address


class DestinationError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Revision:
    name: str
    weight: int
    endpoints: tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class Destination:
    namespace: str
    function: str
    timeout: float
    revisions: tuple[Revision, ...]

    def backends(self) -> list[tuple[str, int]]:
        return [(r.name, r.weight) for r in self.revisions]

    def revision(self, name: str) -> Revision:
        return next(r for r in self.revisions if r.name == name)


def parse_destination(document: Any) -> Destination:
    """The platform's answer; ValueError when it is not what was asked for."""
    try:
        revisions = tuple(
            Revision(
                name=str(item["name"]),
                weight=int(item["weight"]),
                endpoints=tuple(
                    Address(str(e["name"]), str(e["host"]), int(e["port"]), e.get("identity"))
                    for e in item.get("endpoints") or ()
                ),
            )
            for item in document["revisions"]
        )
        return Destination(
            str(document["namespace"]),
            str(document["function"]),
            float(document.get("timeout", 30.0)),
            revisions,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"a destination answer is malformed: {error!r}") from None


class DestinationClient:
    def __init__(
        self,
        url: str,
        *,
        context: ssl.SSLContext,
        server_identity: str,
        pool: ConnectionPool | None = None,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the destinations URL {url!r} must be https://host[:port]/path")
        self.host, self.port = parts.hostname, parts.port or 443
        self.authority = parts.netloc.encode()
        self.path = parts.path.rstrip("/")
        self.context = context
        self.server_identity = server_identity
        self.pool = pool or ConnectionPool(max_idle_per_host=4)
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Destination]] = {}

    async def get(
        self, namespace: str, function: str, *, activate: str | None = None, timeout: float = 60.0
    ) -> Destination:
        """Where ``function`` is; ``activate`` names a revision at zero to wake first."""
        key = (namespace, function)
        cached = self._cache.get(key)
        if cached is not None and not activate and self.clock() - cached[0] < self.ttl:
            return cached[1]
        target = f"{self.path}/{quote(namespace)}/{quote(function)}"
        if activate:
            target += f"?activate={quote(activate)}"
        request = Request("GET", target.encode(), [(b"host", self.authority)])
        try:
            response = await self.pool.request(
                self.host,
                self.port,
                request,
                timeout=timeout,
                ssl=self.context,
                server_hostname=self.server_identity,
            )
        except UpstreamError as error:
            raise DestinationError(
                503, f"the platform cannot be asked where {namespace}/{function} is: {error}"
            ) from None
        if response.status != 200:
            try:
                reason = str(json.loads(response.body).get("error"))
            except (ValueError, AttributeError):
                reason = response.body[:200].decode("utf-8", "replace")
            raise DestinationError(response.status, reason)
        destination = parse_destination(json.loads(response.body))
        self._cache[key] = (self.clock(), destination)
        return destination

    async def close(self) -> None:
        await self.pool.close()
