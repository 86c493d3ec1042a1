"""The egress handler: Host names the callee; a revision is picked; outbound does the rest."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from fnmesh.platform.http import Peer, Request, Response
from fnmesh.platform.mesh.egress.destinations import DestinationClient, DestinationError
from fnmesh.platform.mesh.outbound import Outbound, Settings, Target
from fnmesh.platform.model.traffic import pick_weighted

JSON = [(b"content-type", b"application/json")]


def _error(status: int, message: str) -> Response:
    return Response(status, list(JSON), json.dumps({"error": message}).encode() + b"\n")


def callee(host: bytes | None, namespace: str) -> tuple[str, str] | None:
    """``<function>`` or ``<function>.<namespace>`` (a port is ignored)."""
    if not host:
        return None
    name = host.decode("ascii", "replace").rsplit(":", 1)[0].lower()
    function, _, other = name.partition(".")
    if not function or "." in other:
        return None
    return (other or namespace), function


class EgressHandler:
    def __init__(
        self,
        destinations: DestinationClient,
        outbound: Outbound,
        *,
        namespace: str,
        roll: Callable[[], float] = random.random,
    ) -> None:
        self.destinations = destinations
        self.outbound = outbound
        self.namespace = namespace
        self.roll = roll
        self._settings: dict[float, Settings] = {}

    async def __call__(self, request: Request, peer: Peer) -> Response:
        found = callee(request.header(b"host"), self.namespace)
        if found is None:
            return _error(
                400,
                "name the function to call in the Host header: "
                "'<function>' or '<function>.<namespace>'",
            )
        namespace, function = found
        try:
            destination = await self.destinations.get(namespace, function)
            revision = pick_weighted(destination.backends(), self.roll())
            if revision is None:
                return _error(503, f"function {namespace}/{function} has no revision with traffic")
            if not destination.revision(revision).endpoints:
                destination = await self.destinations.get(namespace, function, activate=revision)
        except DestinationError as error:
            return _error(error.status, error.reason)
        chosen = destination.revision(revision)
        settings = self._settings.get(destination.timeout)
        if settings is None:
            settings = self._settings[destination.timeout] = Settings(timeout=destination.timeout)
        target = Target(
            name=f"{namespace}/{revision}",
            namespace=namespace,
            function=function,
            revision=revision,
            endpoints=chosen.endpoints,
            settings=settings,
        )
        return await self.outbound.request(target, request)
