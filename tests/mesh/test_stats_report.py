"""Stats reports: built on a fake clock, sent over real mTLS to a stub stats endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from proxykit import CALLER, GATEWAY, HELLO, TELEMETRY, Mesh, StaticIdentity, wait_until

from fnmesh.platform.http import ConnectionPool, HttpServer, Peer, Request, Response, serve
from fnmesh.platform.mesh.metrics.responses import ResponseMetrics, ResponseTotals
from fnmesh.platform.mesh.stats.load import ConcurrencyIntegral, LoadSample
from fnmesh.platform.mesh.stats.report import (
    ReportLabels,
    StatsReply,
    build_report,
    parse_reply,
)
from fnmesh.platform.mesh.stats.reporter import StatsReporter, StatsTarget
from fnmesh.platform.mesh.tap.filters import TapFilter
from fnmesh.platform.mesh.tap.recorder import TapRecorder

LABELS = ReportLabels("default", "hello", "hello-00001", "hello-00001-abc")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_report_carries_the_interval_counts_and_buckets() -> None:
    totals = ResponseTotals(5, 3, 1, (0, 0, 2, *([0] * 21), 1, 1))
    report = build_report(LABELS, 1700000000.5, LoadSample(10.0, 11.0, 2.5), totals, [{"x": 1}])
    assert report == {
        "namespace": "default",
        "function": "hello",
        "revision": "hello-00001",
        "replica": "hello-00001-abc",
        "time": 1700000000.5,
        "interval": 1.0,
        "concurrency": 2.5,
        "requests": 5,
        "success": 3,
        "failure": 1,
        "latencyBuckets": {"3": 2, "50000": 1, "+Inf": 1},
        "tap": [{"x": 1}],
    }


def test_replies_open_and_close_tap_sessions() -> None:
    assert parse_reply({"tap": None}) == StatsReply(None)
    assert parse_reply({}) == StatsReply(None)
    assert parse_reply({"tap": {"filters": {"method": "GET"}}}) == StatsReply(TapFilter("GET"))
    assert parse_reply({"tap": {}}) == StatsReply(TapFilter())
    with pytest.raises(ValueError, match="null or"):
        parse_reply({"tap": True})
    with pytest.raises(ValueError, match="JSON object"):
        parse_reply([])


def test_the_stats_url_must_be_https() -> None:
    target = StatsTarget.parse("https://10.0.0.1:9090/v1/stats?x=1")
    assert (target.host, target.port, target.target) == ("10.0.0.1", 9090, b"/v1/stats?x=1")
    assert StatsTarget.parse("https://stats").port == 443
    with pytest.raises(ValueError, match="mTLS"):
        StatsTarget.parse("http://10.0.0.1:9090/")


@dataclass
class StatsEndpoint:
    """A stub of the platform's stats endpoint: records reports, answers with ``reply``."""

    server: HttpServer | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    callers: list[str | None] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=lambda: {"tap": None})

    async def handle(self, request: Request, peer: Peer) -> Response:
        self.callers.append(peer.identity)
        self.reports.append(json.loads(request.body))
        return Response(
            200, [(b"content-type", b"application/json")], json.dumps(self.reply).encode()
        )

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.port}/v1/stats"


@dataclass
class Reporting:
    mesh: Mesh
    endpoint: StatsEndpoint
    clock: FakeClock
    load: ConcurrencyIntegral
    responses: ResponseMetrics
    tap: TapRecorder
    pool: ConnectionPool

    def reporter(self, server_identity: str = TELEMETRY) -> StatsReporter:
        return StatsReporter(
            target=StatsTarget.parse(self.endpoint.url),
            server_identity=server_identity,
            ssl_context=StaticIdentity(self.mesh, HELLO).client_context(),
            pool=self.pool,
            labels=LABELS,
            load=self.load,
            responses=self.responses,
            tap=self.tap,
            clock=self.clock,
            wall_clock=lambda: 1_700_000_000.0,
            interval=1.0,
        )


async def _start(mesh: Mesh, identity: str) -> StatsEndpoint:
    endpoint = StatsEndpoint()
    endpoint.server = await serve(endpoint.handle, "127.0.0.1", 0, ssl=mesh.server(identity))
    return endpoint


@pytest.fixture
async def reporting() -> AsyncIterator[Reporting]:
    mesh = Mesh()
    endpoint = await _start(mesh, TELEMETRY)
    clock = FakeClock()
    responses = ResponseMetrics(
        direction="inbound", peer_label="client_id", tls=True, labels={"namespace": "default"}
    )
    pool = ConnectionPool()
    try:
        yield Reporting(
            mesh, endpoint, clock, ConcurrencyIntegral(clock()), responses, TapRecorder(), pool
        )
    finally:
        await pool.close()
        assert endpoint.server is not None
        await endpoint.server.close(1.0)


async def test_reports_carry_counts_and_time_weighted_concurrency(reporting: Reporting) -> None:
    clock, load, responses = reporting.clock, reporting.load, reporting.responses
    reporter = reporting.reporter()
    # Second one: two requests in flight for the whole second, one answered at its end.
    for _ in range(2):
        load.arrived(clock())
        responses.request(CALLER)
    clock.now += 1.0
    load.departed(clock())
    responses.response(200, CALLER, 1000.0)
    assert await reporter.report()
    # Second two: the other request takes another half second and fails; a quick one too.
    clock.now += 0.5
    load.departed(clock())
    responses.response(503, CALLER, 1500.0)
    load.arrived(clock())
    responses.request(GATEWAY)
    load.departed(clock())
    responses.response(200, GATEWAY, 2.0)
    clock.now += 0.5
    assert await reporter.report()
    first, second = reporting.endpoint.reports
    assert reporting.endpoint.callers == [HELLO, HELLO], "reports travel with our identity"
    assert first["concurrency"] == pytest.approx(2.0)
    assert (first["requests"], first["success"], first["failure"]) == (2, 1, 0)
    assert first["latencyBuckets"] == {"1000": 1}
    assert second["concurrency"] == pytest.approx(0.5)
    assert (second["requests"], second["success"], second["failure"]) == (1, 1, 1)
    assert second["latencyBuckets"] == {"2": 1, "2000": 1}
    assert second["interval"] == pytest.approx(1.0)
    assert second["revision"] == "hello-00001" and second["replica"] == "hello-00001-abc"


async def test_a_tap_session_speeds_reports_up_and_carries_events(reporting: Reporting) -> None:
    reporter = reporting.reporter()
    assert reporter.period == 1.0
    reporting.endpoint.reply = {"tap": {"filters": {"pathPrefix": "/orders"}}}
    assert await reporter.report()
    assert reporting.tap.session == TapFilter(path_prefix="/orders")
    assert reporter.period == pytest.approx(0.1)
    reporting.tap.record({"type": "request-init", "id": "1"})
    reporting.endpoint.reply = {"tap": None}
    assert await reporter.report()
    assert reporting.endpoint.reports[-1]["tap"] == [{"type": "request-init", "id": "1"}]
    assert not reporting.tap.active and reporter.period == 1.0


async def test_reports_go_only_to_the_control_identity(
    reporting: Reporting, caplog: pytest.LogCaptureFixture
) -> None:
    impostor = await _start(reporting.mesh, GATEWAY)  # a mesh member, but not the autoscaler
    try:
        reporting.endpoint = impostor
        reporter = reporting.reporter()
        reporting.tap.record({"id": "kept"})
        assert not await reporter.report()
        assert not await reporter.report()
        assert impostor.reports == []
        assert reporting.tap.take() == [{"id": "kept"}], "unsent tap events wait for the next"
        assert sum("stats report to" in r.getMessage() for r in caplog.records) == 1
    finally:
        assert impostor.server is not None
        await impostor.server.close(1.0)


async def test_the_loop_reports_every_interval(reporting: Reporting) -> None:
    loop = asyncio.get_running_loop()
    reporter = reporting.reporter()
    reporter.clock = loop.time
    reporter.interval = 0.02
    task = asyncio.create_task(reporter.run())
    try:
        await wait_until("three reports", lambda: len(reporting.endpoint.reports) >= 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
