"""``RemoteMetrics``: the controller's ``Metrics`` from a telemetry hub over HTTP (a real
socket, a stand-in hub); anything but a well-formed answer counts as no sample."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from support.golden_server import GoldenServer, erroring_body, healthy_body

from fnmesh.platform.controller.remote_metrics import (
    MAX_BODY,
    RemoteMetrics,
    RemoteSample,
    parse_sample,
)
from fnmesh.platform.controller.rollout import check
from fnmesh.platform.model import RolloutSpec


@pytest.fixture
def hub() -> Iterator[GoldenServer]:
    with GoldenServer() as server:
        yield server


def test_a_sample_is_read_from_the_hub(hub: GoldenServer) -> None:
    hub.answers["hello-00002"] = erroring_body(0.05)
    metrics = RemoteMetrics(hub.url + "/")
    sample = metrics.golden("team-a", "hello-00002", 30)
    assert sample == RemoteSample(1000, pytest.approx(0.95), 20.0)
    assert hub.asked == [{"namespace": "team-a", "revision": "hello-00002", "window": "30"}]
    # what the canary analysis makes of it
    assert sample is not None
    assert check(RolloutSpec(strategy="canary"), sample).outcome == "failed"


def test_a_revision_without_outcomes_has_no_sample(hub: GoldenServer) -> None:
    assert RemoteMetrics(hub.url).golden("team-a", "hello-00009", 0.5) is None
    assert hub.asked[-1]["window"] == "0.5"


@pytest.mark.parametrize(
    "answer",
    [
        500,
        b"not json",
        b"[1, 2]",
        {"requests": -1, "successRate": 1.0},
        {"requests": 10, "successRate": 1.5},
        {"requests": True},
        {"requests": 10, "p99Ms": "fast"},
        b"{" + b" " * MAX_BODY + b"}",
    ],
)
def test_a_bad_answer_is_no_sample(
    hub: GoldenServer, answer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub.answers["hello-00002"] = answer
    metrics = RemoteMetrics(hub.url)
    assert metrics.golden("team-a", "hello-00002", 30) is None
    assert metrics.golden("team-a", "hello-00002", 30) is None
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # once per streak, not once per call
    assert "the rollout waits" in warnings[0].getMessage()
    hub.answers["hello-00002"] = healthy_body()
    assert metrics.golden("team-a", "hello-00002", 30) == RemoteSample(100, 1.0, 20.0)


def test_an_unreachable_hub_is_no_sample() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens there once it is closed
    metrics = RemoteMetrics(f"http://127.0.0.1:{port}", timeout=1)
    assert metrics.golden("team-a", "hello-00002", 30) is None


@pytest.mark.parametrize("url", ["fnmesh-telemetry:9090", "ftp://hub", "http://"])
def test_the_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="must be http"):
        RemoteMetrics(url)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "requests"),
        ({"requests": 1.5}, "requests"),
        ({"requests": 1, "successRate": -0.1}, "successRate"),
        ({"requests": 1, "p99Ms": -1}, "p99Ms"),
        ("text", "JSON object"),
    ],
)
def test_parse_sample_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        parse_sample(body)


def test_parse_sample_takes_nulls_and_ignores_other_fields() -> None:
    body = {"requests": 0, "successRate": None, "p99Ms": None, "p50Ms": 3}
    assert parse_sample(body) == RemoteSample(0, None, None)
