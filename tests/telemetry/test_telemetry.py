import asyncio

import pytest

from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.report import ReportError, parse_report
from fnmesh.platform.telemetry.tap import TapFilter
from fnmesh.platform.telemetry.windows import quantile


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Load:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float, float]] = []

    def record(
        self, namespace: str, revision: str, source: str, concurrency: float, rps: float
    ) -> None:
        self.seen.append((revision, source, concurrency, rps))


def report(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "namespace": "default",
        "function": "hello",
        "revision": "hello-00001",
        "replica": "hello-00001-abc",
        "concurrency": 2.5,
        "requests": 10,
        "success": 9,
        "failure": 1,
        "latencyBuckets": {"5": 6, "10": 3, "100": 1},
    }
    body.update(extra)
    return body


def test_reports_are_checked_field_by_field() -> None:
    assert parse_report(report()).latency == {5.0: 6, 10.0: 3, 100.0: 1}
    with pytest.raises(ReportError) as caught:
        parse_report(report(namespace="", concurrency=-1, tap="x"))
    text = str(caught.value)
    assert "namespace" in text and "concurrency" in text and "tap" in text


def test_quantiles_interpolate_inside_buckets_like_prometheus() -> None:
    counts = [0] * 25
    counts[4] = 50  # (4, 5] ms
    counts[5] = 50  # (5, 10] ms
    assert quantile(0.5, counts) == pytest.approx(5.0)
    assert quantile(0.75, counts) == pytest.approx(7.5)
    assert quantile(0.5, [0] * 25) is None


def test_the_hub_feeds_the_autoscaler_and_the_golden_metrics() -> None:
    clock, load = Clock(), Load()
    hub = TelemetryHub(load, clock=clock)
    for _ in range(3):
        hub.ingest(parse_report(report()))
        clock.now += 1
    assert load.seen[-1] == ("hello-00001", "hello-00001-abc", 2.5, 10.0)
    golden = hub.golden("default", "hello-00001", 10)
    assert golden is not None
    assert (golden.requests, golden.success, golden.failure) == (30, 27, 3)
    assert golden.success_rate == pytest.approx(0.9)
    assert golden.rps == pytest.approx(3.0)
    assert golden.p50_ms is not None and 4 <= golden.p50_ms <= 5
    clock.now += 100
    assert hub.golden("default", "hello-00001", 10).requests == 0  # type: ignore[union-attr]


async def test_tap_sessions_get_matching_events_and_reporters_learn_the_filters() -> None:
    hub = TelemetryHub(clock=Clock())
    assert hub.ingest(parse_report(report()))["tap"] is None
    key, session = hub.taps.open(TapFilter("default", "hello", method="POST", path_prefix="/x"))
    reply = hub.ingest(
        parse_report(
            report(
                tap=[
                    {"method": "POST", "path": "/x/1"},
                    {"method": "GET", "path": "/x/2"},
                    {"method": "POST", "path": "/y"},
                ]
            )
        )
    )
    assert reply["tap"] == {"filters": {"method": "POST", "pathPrefix": "/x"}}
    event = await asyncio.wait_for(session.queue.get(), 1)
    assert event["path"] == "/x/1"
    assert session.queue.empty()
    hub.taps.close(key)
    assert hub.ingest(parse_report(report()))["tap"] is None
