"""What readers of telemetry need: golden metrics and tap feeds, local or remote.

``TelemetryHub`` is one (in the same process); ``client.HubClient`` is one over the
hub's read API. The API's ``fn stat`` and ``fn tap`` read through this protocol, so they
work the same whichever process holds the hub.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from fnmesh.platform.telemetry.tap import TapFilter
from fnmesh.platform.telemetry.windows import Golden


class TapFeed(Protocol):
    async def next(self, timeout: float, limit: int = 500) -> list[dict[str, Any]]:
        """Events that arrived (at most ``limit``), waiting up to ``timeout`` s for one."""
        ...


class TelemetryReader(Protocol):
    async def read_golden(self, namespace: str, revision: str, window: float) -> Golden | None:
        """Outcomes of ``revision`` over the last ``window`` s; None when it never reported.
        Raises ``TelemetryUnavailable`` when the hub cannot be asked."""
        ...

    def tap(self, tap_filter: TapFilter) -> AbstractAsyncContextManager[TapFeed]:
        """A tap session lasting as long as the context."""
        ...


class TelemetryUnavailable(Exception):
    """The hub could not be asked (the message says why)."""
