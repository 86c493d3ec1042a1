"""The driver that sends a stats report every interval over mTLS, and follows tap sessions.

Each report is a POST of JSON to the stats URL, made with the proxy's own client
certificate, to a server that must present the platform's control identity. The reply
opens, changes or closes the tap session; while one is open, reports go every
``tap_interval`` (100 ms) instead of every ``interval`` so tap events arrive live.

A report that cannot be sent is dropped (its interval's counts are not resent), but its
tap events go back to the ring for the next one. Failures are logged once per outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fnmesh.platform.http import ConnectionPool, Request, UpstreamError
from fnmesh.platform.mesh.metrics.responses import NO_RESPONSES, ResponseMetrics
from fnmesh.platform.mesh.stats.load import ConcurrencyIntegral
from fnmesh.platform.mesh.stats.report import ReportLabels, build_report, parse_reply
from fnmesh.platform.mesh.tap.recorder import TapRecorder

log = logging.getLogger("fnmesh.mesh.stats")

MAX_TAP_EVENTS_PER_REPORT = 1000


@dataclass(frozen=True, slots=True)
class StatsTarget:
    """Where reports go: ``https://host:port/path``."""

    host: str
    port: int
    target: bytes
    authority: bytes

    @classmethod
    def parse(cls, url: str) -> StatsTarget:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(
                f"the stats URL {url!r} must be https://host:port/path (reports travel over mTLS)"
            )
        try:
            port = parts.port or 443
        except ValueError:
            raise ValueError(f"the stats URL {url!r} has an invalid port") from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname, port, target.encode(), parts.netloc.encode())


class StatsReporter:
    def __init__(
        self,
        *,
        target: StatsTarget,
        server_identity: str,
        ssl_context: ssl.SSLContext,
        pool: ConnectionPool,
        labels: ReportLabels,
        load: ConcurrencyIntegral,
        responses: ResponseMetrics,
        tap: TapRecorder,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        interval: float = 1.0,
        tap_interval: float = 0.1,
        timeout: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.target = target
        self.server_identity = server_identity
        self.ssl_context = ssl_context
        self.pool = pool
        self.labels = labels
        self.load = load
        self.responses = responses
        self.tap = tap
        self.clock = clock
        self.wall_clock = wall_clock
        self.interval = interval
        self.tap_interval = tap_interval
        self.timeout = timeout
        self.sleep = sleep
        self.sent = 0
        self._baseline = NO_RESPONSES
        self._failing = False

    @property
    def period(self) -> float:
        """How long until the next report: shorter while a tap session is open."""
        return min(self.interval, self.tap_interval) if self.tap.active else self.interval

    async def run(self) -> None:
        """Report every period until cancelled."""
        due = self.clock() + self.period
        while True:
            await self.sleep(max(0.0, due - self.clock()))
            try:
                await self.report()
            except Exception:  # a bug must not end reporting for the replica's lifetime
                log.exception("building or sending a stats report failed")
            due = max(due + self.period, self.clock())

    async def report(self) -> bool:
        """Send one report for the time since the previous one; True when it was accepted."""
        now = self.clock()
        totals = self.responses.totals()
        interval = totals - self._baseline
        self._baseline = totals
        events = self.tap.take(MAX_TAP_EVENTS_PER_REPORT)
        body = build_report(self.labels, self.wall_clock(), self.load.sample(now), interval, events)
        request = Request(
            "POST",
            self.target.target,
            [(b"host", self.target.authority), (b"content-type", b"application/json")],
            json.dumps(body, separators=(",", ":")).encode(),
        )
        try:
            response = await self.pool.request(
                self.target.host,
                self.target.port,
                request,
                timeout=self.timeout,
                ssl=self.ssl_context,
                server_hostname=self.server_identity,
            )
            if response.status != 200:
                raise _Refused(f"answered {response.status}: {response.body[:200]!r}")
            reply = parse_reply(json.loads(response.body))
        except (UpstreamError, _Refused, ValueError) as error:
            self.tap.put_back(events)
            self._failed(error)
            return False
        self._recovered()
        self.sent += 1
        if reply.tap is None:
            self.tap.stop()
        else:
            self.tap.start(reply.tap, self.clock())
        return True

    def _failed(self, error: Exception) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "stats report to https://%s:%d failed: %s (reports are dropped until it"
                " answers again)",
                self.target.host,
                self.target.port,
                error,
            )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info(
                "stats reports to https://%s:%d work again", self.target.host, self.target.port
            )


class _Refused(Exception):
    pass
