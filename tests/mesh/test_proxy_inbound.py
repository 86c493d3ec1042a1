"""The whole inbound proxy in process, over real sockets and real mTLS: a stub runtime
behind it, callers with certificates from a test mesh, the admin endpoint beside it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from proxykit import (
    CALLER,
    GATEWAY,
    HELLO,
    KNOWN_LINT,
    STRANGER,
    TELEMETRY,
    Mesh,
    StaticIdentity,
    Upstream,
    call,
    make_config,
    promtool_problems,
    wait_until,
    write_policy,
)

from fnmesh.platform.http import ConnectionPool, HttpServer, Peer, Request, Response, serve
from fnmesh.platform.mesh.proxy.config import ProxyConfig
from fnmesh.platform.mesh.proxy.replica import ReplicaProxy


@dataclass
class Running:
    mesh: Mesh
    proxy: ReplicaProxy
    upstream: Upstream
    policy: Path

    @property
    def port(self) -> int:
        return self.proxy.inbound_port

    async def admin(self, path: str) -> Response:
        pool = ConnectionPool()
        try:
            return await pool.request(
                "127.0.0.1", self.proxy.admin_port, Request("GET", path.encode(), []), timeout=5
            )
        finally:
            await pool.close()

    async def metric(self, name: str, **labels: str) -> float:
        text = (await self.admin("/metrics")).body.decode()
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    started: list[Running] = []

    async def _start(**options: Any) -> Running:
        mesh = Mesh()
        upstream = await Upstream().start()
        policy = tmp_path / "policy.json"
        write_policy(policy, public=True, allow=(CALLER,))
        config = make_config(
            upstream_port=upstream.port,
            policy_file=policy,
            trust_anchors_pem=mesh.anchors,
            **options,
        )
        proxy = ReplicaProxy(config, StaticIdentity(mesh, HELLO))
        await proxy.start()
        running = Running(mesh, proxy, upstream, policy)
        started.append(running)
        return running

    yield _start
    for running in started:
        await running.upstream.close()
        await running.proxy.stop()


async def test_an_allowed_caller_reaches_the_function(start: Start) -> None:
    running = await start()
    answer = await call(running.port, running.mesh.client(CALLER), b"/orders?x=1", body=b"hi")
    assert answer.status == 200
    echoed = json.loads(answer.body)
    assert echoed["path"] == "/orders" and echoed["body"] == "hi"
    assert echoed["headers"]["fnmesh-client-id"] == CALLER
    gateway = await call(running.port, running.mesh.client(GATEWAY))
    assert gateway.status == 200, "a public function accepts the gateway"
    assert await running.metric("response_total", client_id=CALLER, status_code="200") == 1
    assert await running.metric("request_total", client_id=GATEWAY) == 1
    assert await running.metric("tcp_open_total") == 2


async def test_an_unauthorized_identity_gets_403_and_the_deny_counter_moves(
    start: Start,
) -> None:
    running = await start()
    for _ in range(2):
        answer = await call(running.port, running.mesh.client(STRANGER))
        assert answer.status == 403
        assert STRANGER in json.loads(answer.body)["error"]
    assert running.upstream.seen == [], "nothing reached the function"
    assert await running.metric("inbound_http_authz_deny_total", client_id=STRANGER) == 2
    assert await running.metric("response_total", client_id=STRANGER, classification="success") == 2


async def test_a_private_function_refuses_the_gateway_once_the_policy_changes(
    start: Start,
) -> None:
    running = await start()
    assert (await call(running.port, running.mesh.client(GATEWAY))).status == 200
    write_policy(running.policy, public=False, allow=(CALLER,))
    running.proxy.policies.refresh()  # what the next check a second later does
    assert (await call(running.port, running.mesh.client(GATEWAY))).status == 403
    assert (await call(running.port, running.mesh.client(CALLER))).status == 200


async def test_a_full_concurrency_queue_answers_503(start: Start) -> None:
    running = await start(concurrency=1, queue_depth=1)
    context = running.mesh.client(CALLER)
    held = [asyncio.create_task(call(running.port, context, b"/hold")) for _ in range(2)]
    state = running.proxy.concurrency
    await wait_until("one in flight, one queued", lambda: (state.in_flight, state.queued) == (1, 1))
    refused = await call(running.port, context, b"/")
    assert refused.status == 503
    assert "queue full" in json.loads(refused.body)["error"]
    running.upstream.release.set()
    assert [(await task).status for task in held] == [200, 200]
    assert await running.metric("response_total", status_code="503", classification="failure") == 1


async def test_a_slow_function_times_out_with_504(start: Start) -> None:
    running = await start(request_timeout=0.2)
    answer = await call(running.port, running.mesh.client(CALLER), b"/slow?s=5")
    assert answer.status == 504
    assert "did not answer within 0.2s" in json.loads(answer.body)["error"]
    assert await running.metric("response_total", status_code="504") == 1


async def test_health_is_answered_by_the_proxy_and_not_counted(start: Start) -> None:
    running = await start()
    answer = await call(running.port, running.mesh.client(STRANGER), b"/_fnmesh/health")
    assert (answer.status, answer.body) == (200, b"ok\n"), "any mesh identity may probe"
    assert running.upstream.seen == []
    assert await running.metric("request_total", client_id=STRANGER) == 0


async def test_admin_ready_live_and_metrics(start: Start) -> None:
    running = await start()
    assert (await running.admin("/live")).status == 200
    assert (await running.admin("/ready")).status == 200
    assert (await running.admin("/nothing")).status == 404
    await call(running.port, running.mesh.client(CALLER))
    await call(running.port, running.mesh.client(STRANGER))
    metrics = await running.admin("/metrics")
    assert metrics.header(
        b"content-type",
    ).startswith(b"text/plain")  # type: ignore[union-attr]
    text = metrics.body
    for family in (
        b"request_total",
        b"response_total",
        b"response_latency_ms_bucket",
        b"tcp_open_total",
        b"tcp_open_connections",
        b"inbound_http_authz_deny_total",
        b"identity_cert_expiration_timestamp_seconds",
        b"process_resident_memory_bytes",
    ):
        assert family in text
    assert b'namespace="default"' in text and b'revision="hello-00001"' in text
    assert promtool_problems(text) == KNOWN_LINT
    await running.upstream.close()
    not_ready = await running.admin("/ready")
    assert not_ready.status == 503
    assert "does not answer" in json.loads(not_ready.body)["error"]


async def test_ready_needs_a_valid_certificate(tmp_path: Path) -> None:
    mesh = Mesh()
    upstream = await Upstream().start()
    config = make_config(
        upstream_port=upstream.port,
        policy_file=tmp_path / "policy.json",
        trust_anchors_pem=mesh.anchors,
    )
    proxy = ReplicaProxy(config, StaticIdentity(mesh, HELLO, expires=1.0))
    await proxy.start()
    try:
        assert await proxy.readiness() == "the certificate has expired"
    finally:
        await proxy.stop()
        await upstream.close()


async def test_drain_finishes_in_flight_requests(start: Start) -> None:
    running = await start()
    context = running.mesh.client(CALLER)
    held = [asyncio.create_task(call(running.port, context, b"/hold")) for _ in range(3)]
    await wait_until("three held", lambda: running.upstream.holding == 3)
    stopping = asyncio.create_task(running.proxy.stop())
    await wait_until("draining", lambda: running.proxy.drain.draining)
    ready = await running.admin("/ready")
    assert ready.status == 503 and b"shutting down" in ready.body
    running.upstream.release.set()
    assert [(await task).status for task in held] == [200, 200, 200]
    await stopping


@dataclass
class StatsEndpoint:
    server: HttpServer | None = None
    reports: list[dict[str, Any]] | None = None
    reply: dict[str, Any] | None = None

    async def handle(self, request: Request, peer: Peer) -> Response:
        assert self.reports is not None
        self.reports.append(json.loads(request.body))
        return Response(200, [], json.dumps(self.reply or {"tap": None}).encode())


async def test_stats_reports_and_tap_events_reach_the_platform(
    tmp_path: Path,
) -> None:
    mesh = Mesh()
    endpoint = StatsEndpoint(reports=[])
    endpoint.server = await serve(endpoint.handle, "127.0.0.1", 0, ssl=mesh.server(TELEMETRY))
    upstream = await Upstream().start()
    policy = tmp_path / "policy.json"
    write_policy(policy, public=True)
    config: ProxyConfig = make_config(
        upstream_port=upstream.port,
        policy_file=policy,
        trust_anchors_pem=mesh.anchors,
        stats_url=f"https://127.0.0.1:{endpoint.server.port}/v1/stats",
        stats_interval=0.05,
    )
    proxy = ReplicaProxy(config, StaticIdentity(mesh, HELLO))
    await proxy.start()
    reports = endpoint.reports
    try:
        pool = ConnectionPool()
        context = mesh.client(GATEWAY)
        for _ in range(3):
            assert (await call(proxy.inbound_port, context, b"/a", pool=pool)).status == 200
        await wait_until(
            "the three requests reported", lambda: sum(r["requests"] for r in reports) == 3
        )
        assert sum(r["success"] for r in reports) == 3
        endpoint.reply = {"tap": {"filters": {"pathPrefix": "/orders"}}}
        await wait_until("the tap session open", lambda: proxy.tap.active)
        await call(proxy.inbound_port, context, b"/orders/7", pool=pool)
        await call(proxy.inbound_port, context, b"/other", pool=pool)
        await wait_until("tap events reported", lambda: any(r["tap"] for r in reports))
        events = [event for report in reports for event in report["tap"]]
        assert [e["type"] for e in events] == ["request-init", "response-init", "response-end"]
        assert {e["path"] for e in events} == {"/orders/7"}
        assert events[0]["source"] == GATEWAY and events[0]["destination"] == HELLO
        await pool.close()
    finally:
        await proxy.stop()
        await upstream.close()
        await endpoint.server.close(1.0)
    assert reports[-1]["requests"] == 0, "a last report at shutdown"
