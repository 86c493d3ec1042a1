"""The inbound layers one by one, in process: limits, timeout, authorization, reserved
paths and forwarding (the forwarding ones against a real upstream socket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from proxykit import CALLER, GATEWAY, STRANGER, Upstream, wait_until, write_policy

from fnmesh.platform.http import ConnectionPool, Peer, Request, Response
from fnmesh.platform.mesh.inbound.authz import Authorize
from fnmesh.platform.mesh.inbound.concurrency import (
    ConcurrencyState,
    LimitConcurrency,
    default_queue_depth,
)
from fnmesh.platform.mesh.inbound.drain import Drain
from fnmesh.platform.mesh.inbound.forward import CLIENT_ID_HEADER, Forward
from fnmesh.platform.mesh.inbound.reserved import AnswerReserved
from fnmesh.platform.mesh.inbound.timeout import Timeout
from fnmesh.platform.mesh.metrics.proxy import ProxyMetrics
from fnmesh.platform.mesh.policy.watch import PolicyFile
from fnmesh.platform.mesh.stats.load import ConcurrencyIntegral

PEER = Peer(("127.0.0.1", 5000), True, CALLER)


class Gate:
    """An inner handler that holds every request until released, in arrival order."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.inside = 0
        self.order: list[bytes] = []

    async def __call__(self, request: Request, peer: Peer) -> Response:
        self.inside += 1
        self.order.append(request.target)
        try:
            await self.open.wait()
        finally:
            self.inside -= 1
        return Response(200, [], request.target)


def limiter(inner: Gate, limit: int, depth: int) -> tuple[LimitConcurrency, ConcurrencyState]:
    loop = asyncio.get_running_loop()
    state = ConcurrencyState(limit, depth, ConcurrencyIntegral(loop.time()), loop.time)
    return LimitConcurrency(inner, state), state


def test_default_queue_depth() -> None:
    assert [default_queue_depth(n) for n in (0, 1, 10)] == [1000, 100, 1000]


async def test_a_full_queue_answers_503_and_the_queue_drains_in_order() -> None:
    gate = Gate()
    layer, state = limiter(gate, limit=2, depth=3)
    tasks = [
        asyncio.create_task(layer(Request("GET", f"/{i}".encode(), []), PEER)) for i in range(5)
    ]
    await wait_until("two in flight and three queued", lambda: state.queued == 3)
    assert (gate.inside, state.in_flight, state.load.in_flight) == (2, 2, 5)
    refused = await layer(Request("GET", b"/6", []), PEER)
    assert refused.status == 503
    assert "queue full" in json.loads(refused.body)["error"]
    gate.open.set()
    answers = await asyncio.gather(*tasks)
    assert [a.status for a in answers] == [200] * 5
    assert gate.order == [b"/0", b"/1", b"/2", b"/3", b"/4"], "first come, first served"
    assert (state.in_flight, state.queued, state.load.in_flight) == (0, 0, 0)


async def test_a_request_cancelled_in_the_queue_leaves_its_place() -> None:
    gate = Gate()
    layer, state = limiter(gate, limit=1, depth=2)
    first = asyncio.create_task(layer(Request("GET", b"/a", []), PEER))
    waiting = asyncio.create_task(layer(Request("GET", b"/b", []), PEER))
    await wait_until("one queued", lambda: state.queued == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert state.queued == 0
    later = asyncio.create_task(layer(Request("GET", b"/c", []), PEER))
    await wait_until("the next one queued", lambda: state.queued == 1)
    gate.open.set()
    assert (await first).status == (await later).status == 200
    assert gate.order == [b"/a", b"/c"]
    assert (state.in_flight, state.load.in_flight) == (0, 0)


async def test_a_slot_handed_to_a_cancelled_waiter_passes_on() -> None:
    loop = asyncio.get_running_loop()
    state = ConcurrencyState(1, 5, ConcurrencyIntegral(loop.time()), loop.time)
    await state.acquire()
    second = asyncio.create_task(state.acquire())
    third = asyncio.create_task(state.acquire())
    await wait_until("two queued", lambda: state.queued == 2)
    state.release()  # hands the slot to the second...
    second.cancel()  # ...which is cancelled before it runs: the slot must go on
    with pytest.raises(asyncio.CancelledError):
        await second
    await asyncio.wait_for(third, 1.0)
    assert (state.in_flight, state.queued) == (1, 0)
    state.release()
    assert state.in_flight == 0


async def test_unlimited_concurrency_still_bounds_what_it_holds() -> None:
    gate = Gate()
    layer, _ = limiter(gate, limit=0, depth=3)
    tasks = [asyncio.create_task(layer(Request("GET", b"/", []), PEER)) for _ in range(3)]
    await wait_until("three inside", lambda: gate.inside == 3)
    assert (await layer(Request("GET", b"/", []), PEER)).status == 503
    gate.open.set()
    assert [(await t).status for t in tasks] == [200] * 3


async def test_a_slow_request_times_out_with_504() -> None:
    gate = Gate()
    answer = await Timeout(gate, 0.05)(Request("GET", b"/", []), PEER)
    assert answer.status == 504
    assert "did not answer within 0.05s" in json.loads(answer.body)["error"]
    assert gate.inside == 0, "the inner handler was cancelled"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_fast_request_is_untouched_and_other_cancellations_propagate() -> None:
    async def quick(request: Request, peer: Peer) -> Response:
        return Response(200)

    assert (await Timeout(quick, 0.05)(Request("GET", b"/", []), PEER)).status == 200
    gate = Gate()
    task = asyncio.create_task(Timeout(gate, 5.0)(Request("GET", b"/", []), PEER))
    await wait_until("inside", lambda: gate.inside == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_authorization_refuses_with_403_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write_policy(path, public=False, allow=(CALLER,))
    metrics = ProxyMetrics({"namespace": "n", "function": "f", "revision": "r"})
    gate = Gate()
    gate.open.set()
    policies = PolicyFile(path, frozenset({GATEWAY}))
    layer = Authorize(gate, policies, metrics, asyncio.get_running_loop().time)
    assert (await layer(Request("GET", b"/", []), PEER)).status == 200
    refused = await layer(Request("GET", b"/", []), Peer(None, True, STRANGER))
    assert refused.status == 403
    assert STRANGER in json.loads(refused.body)["error"]
    assert (await layer(Request("GET", b"/", []), Peer(None, True, GATEWAY))).status == 403
    assert metrics.authz_denials == {STRANGER: 1, GATEWAY: 1}
    assert gate.order == [b"/"]


async def test_reserved_paths_are_answered_by_the_proxy() -> None:
    gate = Gate()
    gate.open.set()
    drain = Drain()
    layer = AnswerReserved(gate, drain)
    health = await layer(Request("GET", b"/_fnmesh/health", []), PEER)
    assert (health.status, health.body) == (200, b"ok\n")
    assert (await layer(Request("GET", b"/_fnmesh/other", []), PEER)).status == 404
    assert (await layer(Request("GET", b"/_fnmesh", []), PEER)).status == 200, "not reserved"
    assert gate.order == [b"/_fnmesh"]
    drain.draining = True
    assert (await layer(Request("GET", b"/_fnmesh/health", []), PEER)).status == 503


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    running = await Upstream().start()
    try:
        yield running
    finally:
        await running.close()


async def test_forward_passes_the_verified_identity_and_drops_a_forged_one(
    upstream: Upstream,
) -> None:
    pool = ConnectionPool()
    forward = Forward(pool, "127.0.0.1", upstream.port, timeout=5.0)
    forged = [(CLIENT_ID_HEADER, b"admin.fnmesh-system"), (b"x-a", b"1")]
    answer = await forward(Request("POST", b"/echo", forged, b"hi"), PEER)
    echoed = json.loads(answer.body)
    assert answer.status == 200
    assert echoed["headers"][CLIENT_ID_HEADER.decode()] == CALLER
    assert echoed["headers"]["x-a"] == "1" and echoed["body"] == "hi"
    assert [h for h in upstream.seen[0].headers if h[0] == CLIENT_ID_HEADER] == [
        (CLIENT_ID_HEADER, CALLER.encode())
    ]
    await forward(Request("GET", b"/again", []), PEER)
    assert pool.opened == 1, "the loopback connection is reused"
    await pool.close()


async def test_forward_turns_upstream_failures_into_answers(upstream: Upstream) -> None:
    pool = ConnectionPool()
    slow = Forward(pool, "127.0.0.1", upstream.port, timeout=0.05)
    answer = await slow(Request("GET", b"/slow?s=1", []), PEER)
    assert answer.status == 504
    port = upstream.port
    await upstream.close()
    gone = Forward(pool, "127.0.0.1", port, timeout=1.0)
    answer = await gone(Request("GET", b"/", []), PEER)
    assert answer.status == 502
    assert "unreachable" in json.loads(answer.body)["error"]
    await pool.close()
