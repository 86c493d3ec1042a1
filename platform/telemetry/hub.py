"""Fans each report out: load to the autoscaler, outcomes to the windows, taps to sessions.

The hub is also the in-process ``TelemetryReader`` (``read_golden``, ``tap``) and, by
``golden``, the controller's ``Metrics``; ``client`` offers the same over HTTP.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from fnmesh.platform.telemetry.report import Report
from fnmesh.platform.telemetry.tap import TapFilter, TapSession, TapSessions
from fnmesh.platform.telemetry.windows import Golden, OutcomeWindow

Key = tuple[str, str]


class LoadSink(Protocol):
    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None: ...


class TelemetryHub:
    def __init__(
        self,
        load: LoadSink | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        retention: float = 600.0,
    ) -> None:
        self.load = load
        self.clock = clock
        self.retention = retention
        self.taps = TapSessions()
        self._outcomes: dict[Key, OutcomeWindow] = {}
        self._functions: dict[Key, str] = {}  # revision -> function

    def ingest(self, report: Report) -> dict[str, Any]:
        """Take one report; return the reply for its sender (the tap filter to apply)."""
        now = self.clock()
        key = (report.namespace, report.revision)
        self._functions[key] = report.function
        window = self._outcomes.get(key)
        if window is None:
            window = self._outcomes[key] = OutcomeWindow(self.retention)
        window.record(report, now)
        if self.load is not None:
            self.load.record(
                report.namespace,
                report.revision,
                report.source,
                report.concurrency,
                report.requests / report.interval,
            )
        if report.tap:
            self.taps.deliver(report.namespace, report.function, report.tap)
        filters = self.taps.wanted(report.namespace, report.function, report.revision)
        if not filters:
            return {"tap": None}
        # One session's filter goes to the reporter; several are matched here instead.
        return {"tap": {"filters": filters[0] if len(filters) == 1 else {}}}

    def golden(self, namespace: str, revision: str, window: float) -> Golden | None:
        found = self._outcomes.get((namespace, revision))
        return found.golden(window, self.clock()) if found else None

    async def read_golden(self, namespace: str, revision: str, window: float) -> Golden | None:
        return self.golden(namespace, revision, window)

    @contextlib.asynccontextmanager
    async def tap(self, tap_filter: TapFilter) -> AsyncIterator[TapSession]:
        """A live tap session for as long as the context lasts."""
        key, session = self.taps.open(tap_filter)
        try:
            yield session
        finally:
            self.taps.close(key)

    def forget(self, namespace: str, revision: str) -> None:
        self._outcomes.pop((namespace, revision), None)
        self._functions.pop((namespace, revision), None)
