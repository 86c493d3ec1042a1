"""Tap: filters, the rate limit, the bounded ring and the layer, on a fake clock."""

from __future__ import annotations

import pytest
from proxykit import CALLER, HELLO

from fnmesh.platform.http import Peer, Request, Response
from fnmesh.platform.mesh.tap.bucket import TokenBucket
from fnmesh.platform.mesh.tap.filters import ANYTHING, TapFilter, parse_filter
from fnmesh.platform.mesh.tap.layer import TapRequests
from fnmesh.platform.mesh.tap.recorder import TapRecorder
from fnmesh.platform.model.errors import ValidationError

PEER = Peer(("10.0.0.7", 40000), True, CALLER)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("tap_filter", "method", "path", "expected"),
    [
        (ANYTHING, "GET", "/", True),
        (TapFilter(method="POST"), "GET", "/", False),
        (TapFilter(method="POST"), "POST", "/x", True),
        (TapFilter(path_prefix="/orders"), "GET", "/orders/7", True),
        (TapFilter(path_prefix="/orders"), "GET", "/order", False),
        (TapFilter("GET", "/a"), "GET", "/a/b", True),
        (TapFilter("GET", "/a"), "PUT", "/a/b", False),
    ],
)
def test_filters_match_by_method_and_path_prefix(
    tap_filter: TapFilter, method: str, path: str, expected: bool
) -> None:
    assert tap_filter.matches(method, path) is expected


def test_filters_parse_from_the_reply_and_name_bad_fields() -> None:
    assert parse_filter(None) == ANYTHING
    assert parse_filter({"method": "get", "pathPrefix": "/x"}) == TapFilter("GET", "/x")
    assert parse_filter({"method": "get"}).to_json() == {"method": "GET"}
    with pytest.raises(ValidationError) as caught:
        parse_filter({"method": 3, "pathPrefix": "x", "authority": "a"})
    assert {e.path for e in caught.value.errors} == {"method", "pathPrefix", "authority"}


def test_the_bucket_allows_the_rate_plus_a_burst() -> None:
    bucket = TokenBucket(rate=10, burst=10, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(50)) == 10
    assert not bucket.take(0.05)
    assert sum(bucket.take(1.0) for _ in range(50)) == 10, "refills at 10 a second"
    assert sum(bucket.take(100.0) for _ in range(50)) == 10, "never more than the burst"


def test_nothing_is_admitted_without_a_session() -> None:
    recorder = TapRecorder()
    assert not recorder.admit(0.0, "GET", "/")
    recorder.start(ANYTHING, 0.0)
    assert recorder.admit(0.0, "GET", "/")
    recorder.stop()
    assert not recorder.admit(0.0, "GET", "/")


def test_admission_respects_the_rate_in_events_per_second() -> None:
    recorder = TapRecorder(rate=30.0)  # three events per request: ten requests a second
    recorder.start(ANYTHING, 0.0)
    admitted = 0
    for tick in range(200):  # two seconds, a request every 10 ms
        admitted += recorder.admit(tick * 0.01, "GET", "/")
    assert 25 <= admitted <= 30  # 10 a second plus the initial burst


def test_the_ring_keeps_the_newest_and_counts_what_it_dropped() -> None:
    recorder = TapRecorder(capacity=3)
    for i in range(5):
        recorder.record({"n": i})
    assert recorder.dropped == 2
    assert [e["n"] for e in recorder.take(2)] == [2, 3]
    recorder.put_back([{"n": 0}, {"n": 1}, {"n": 2}])
    assert [e["n"] for e in recorder.take()] == [1, 2, 4], "put back in front, room allowing"
    assert recorder.dropped == 3


async def _answer(request: Request, peer: Peer) -> Response:
    return Response(201, [], b"12345")


async def test_the_layer_records_three_events_per_tapped_request() -> None:
    clock, wall = Clock(), Clock()
    recorder = TapRecorder()
    layer = TapRequests(
        _answer, recorder, destination=HELLO, revision="hello-00001", clock=clock, wall_clock=wall
    )
    request = Request("POST", b"/orders/1?x=1", [(b"host", b"hello.default")], b"abc")
    await layer(request, PEER)
    assert recorder.pending == 0, "no session, no events"
    assert request.header(b"x-request-id") is None

    recorder.start(TapFilter(method="POST", path_prefix="/orders"), clock())
    await layer(Request("GET", b"/orders/1", [], b""), PEER)
    assert recorder.pending == 0, "filtered out"
    request = Request("POST", b"/orders/1?x=1", [(b"host", b"hello.default")], b"abc")
    await layer(request, PEER)
    events = recorder.take()
    assert [e["type"] for e in events] == ["request-init", "response-init", "response-end"]
    first, _, last = events
    request_id = request.header(b"x-request-id")
    assert request_id is not None, "the function gets the id the tap shows"
    assert first["id"] == last["id"] == request_id.decode()
    assert first["method"] == "POST" and first["path"] == "/orders/1"
    assert first["authority"] == "hello.default" and first["bytes"] == 3
    assert first["source"] == CALLER and first["destination"] == HELLO
    assert first["tls"] is True and first["revision"] == "hello-00001"
    assert last["status"] == 201 and last["bytes"] == 5 and last["latencyMs"] >= 0


async def test_the_layer_keeps_a_request_id_the_caller_sent() -> None:
    recorder = TapRecorder()
    recorder.start(ANYTHING, 0.0)
    layer = TapRequests(
        _answer, recorder, destination=HELLO, revision="r", clock=Clock(), wall_clock=Clock()
    )
    await layer(Request("GET", b"/", [(b"x-request-id", b"abc-1")]), PEER)
    assert {e["id"] for e in recorder.take()} == {"abc-1"}


async def test_the_layer_stops_when_the_rate_is_spent() -> None:
    clock = Clock()
    recorder = TapRecorder(rate=6.0)  # two requests a second, a burst of two
    recorder.start(ANYTHING, clock())
    layer = TapRequests(
        _answer, recorder, destination=HELLO, revision="r", clock=clock, wall_clock=clock
    )
    for _ in range(10):
        await layer(Request("GET", b"/", []), PEER)
    assert recorder.pending == 6
    clock.now += 1.0
    for _ in range(10):
        await layer(Request("GET", b"/", []), PEER)
    assert recorder.pending == 12
