"""Authorization: the caller's identity must be allowed by the replica's policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fnmesh.platform.http import Handler, Peer, Request, Response, json_error
from fnmesh.platform.mesh.policy.decision import Policy, allowed


class PolicySource(Protocol):
    def current(self, now: float) -> Policy: ...


class DenialCounter(Protocol):
    def authz_denied(self, client_id: str) -> None: ...


class Authorize:
    """Refuses with 403 (and counts it) a caller the policy does not allow."""

    def __init__(
        self,
        inner: Handler,
        policies: PolicySource,
        denials: DenialCounter,
        clock: Callable[[], float],
    ) -> None:
        self.inner = inner
        self.policies = policies
        self.denials = denials
        self.clock = clock

    async def __call__(self, request: Request, peer: Peer) -> Response:
        ok, reason = allowed(self.policies.current(self.clock()), peer.identity)
        if ok:
            return await self.inner(request, peer)
        self.denials.authz_denied(peer.identity or "")
        return json_error(403, f"forbidden: {reason}")
