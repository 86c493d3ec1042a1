"""Linkerd-named metrics: what is recorded, how it renders, and that promtool accepts it."""

from __future__ import annotations

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from proxykit import CALLER, GATEWAY, KNOWN_LINT, promtool_problems

from fnmesh.platform.http import Peer, Request, Response
from fnmesh.platform.mesh.metrics.layer import RecordResponses
from fnmesh.platform.mesh.metrics.proxy import ProxyMetrics
from fnmesh.platform.mesh.metrics.responses import (
    LATENCY_BUCKETS_MS,
    NO_RESPONSES,
    ResponseMetrics,
    is_failure,
)

LABELS = {"namespace": "default", "function": "hello", "revision": "hello-00001"}


def inbound() -> ResponseMetrics:
    return ResponseMetrics(direction="inbound", peer_label="client_id", tls=True, labels=LABELS)


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_linkerd_buckets_and_classification() -> None:
    assert LATENCY_BUCKETS_MS[:5] == (1, 2, 3, 4, 5) and LATENCY_BUCKETS_MS[-1] == 50000
    assert len(LATENCY_BUCKETS_MS) == 25
    assert [is_failure(s) for s in (200, 302, 404, 499, 500, 503)] == [0, 0, 0, 0, 1, 1]


def test_counts_by_status_and_client_with_latency_buckets() -> None:
    metrics = inbound()
    for _ in range(3):
        metrics.request(CALLER)
    metrics.request(GATEWAY)
    metrics.response(200, CALLER, 0.5)
    metrics.response(200, CALLER, 7.0)
    metrics.response(503, CALLER, 60000.0)
    child = metrics._responses[CALLER][200]
    metrics.response(200, CALLER, 1.0)
    assert metrics._responses[CALLER][200] is child, "one cached object per (client, status)"
    registry = CollectorRegistry()
    registry.register(metrics)
    found = samples(registry)
    base = {**LABELS, "direction": "inbound", "tls": "true"}

    def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
        return name, frozenset({**base, **labels}.items())

    assert found[key("request_total", client_id=CALLER)] == 3
    assert found[key("request_total", client_id=GATEWAY)] == 1
    ok = {"client_id": CALLER, "status_code": "200"}
    assert found[key("response_total", **ok, classification="success")] == 3
    assert (
        found[key("response_total", client_id=CALLER, status_code="503", classification="failure")]
        == 1
    )
    assert found[key("response_latency_ms_bucket", **ok, le="1")] == 2
    assert found[key("response_latency_ms_bucket", **ok, le="5")] == 2
    assert found[key("response_latency_ms_bucket", **ok, le="10")] == 3
    assert found[key("response_latency_ms_count", **ok)] == 3
    assert found[key("response_latency_ms_sum", **ok)] == pytest.approx(8.5)
    slow = {"client_id": CALLER, "status_code": "503"}
    assert found[key("response_latency_ms_bucket", **slow, le="50000")] == 0
    assert found[key("response_latency_ms_bucket", **slow, le="+Inf")] == 1


def test_totals_and_their_differences_feed_the_stats_reports() -> None:
    metrics = inbound()
    assert metrics.totals() == NO_RESPONSES
    metrics.request(CALLER)
    metrics.response(200, CALLER, 3.0)
    first = metrics.totals()
    metrics.request(CALLER)
    metrics.request(GATEWAY)
    metrics.response(500, GATEWAY, 15.0)
    metrics.response(204, CALLER, 15.0)
    interval = metrics.totals() - first
    assert (interval.requests, interval.success, interval.failure) == (2, 1, 1)
    assert interval.bucket_counts() == {"20": 2}
    assert first.bucket_counts() == {"3": 1}


async def test_the_layer_counts_every_answer_and_an_error_as_500() -> None:
    metrics = inbound()

    async def ok(request: Request, peer: Peer) -> Response:
        return Response(404)

    async def broken(request: Request, peer: Peer) -> Response:
        raise RuntimeError("bug")

    ticks = iter([0.0, 0.002, 1.0, 1.5])
    peer = Peer(None, True, CALLER)
    await RecordResponses(ok, metrics, lambda: next(ticks))(Request("GET", b"/", []), peer)
    with pytest.raises(RuntimeError):
        await RecordResponses(broken, metrics, lambda: next(ticks))(Request("GET", b"/", []), peer)
    assert metrics._responses[CALLER][404].sum_ms == pytest.approx(2.0)
    assert metrics._responses[CALLER][500].sum_ms == pytest.approx(500.0)
    assert metrics.totals().requests == 2


def test_proxy_families_render_and_pass_promtool() -> None:
    registry = CollectorRegistry()
    responses = inbound()
    proxy = ProxyMetrics(LABELS)
    registry.register(responses)
    registry.register(proxy)
    text = generate_latest(registry)
    assert b"identity_cert_expiration_timestamp_seconds" not in text, "no certificate yet"
    assert promtool_problems(text) <= KNOWN_LINT, "empty families are valid too"

    responses.request(CALLER)
    responses.response(200, CALLER, 3.0)
    proxy.connection_opened()
    proxy.connection_opened()
    proxy.open_connections = lambda: 1
    proxy.handshake_failed("plaintext")
    proxy.authz_denied(CALLER)
    proxy.cert_expiration = lambda: 1_900_000_000.0
    found = samples(registry)
    assert (
        found[
            ("tcp_open_total", frozenset({**LABELS, "direction": "inbound", "tls": "true"}.items()))
        ]
        == 2
    )
    assert (
        found[
            (
                "tcp_open_connections",
                frozenset({**LABELS, "direction": "inbound", "tls": "true"}.items()),
            )
        ]
        == 1
    )
    assert (
        found[
            (
                "inbound_tls_handshake_failure_total",
                frozenset({**LABELS, "reason": "plaintext"}.items()),
            )
        ]
        == 1
    )
    assert (
        found[("inbound_http_authz_deny_total", frozenset({**LABELS, "client_id": CALLER}.items()))]
        == 1
    )
    assert found[("identity_cert_expiration_timestamp_seconds", frozenset(LABELS.items()))] == 1.9e9
    assert promtool_problems(generate_latest(registry)) == KNOWN_LINT
