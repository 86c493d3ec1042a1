"""What the mesh sees: golden metrics (`fn stat`) and live requests (`fn tap`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.backends import ApiBackend, Functions

pytestmark = pytest.mark.e2e

HELLO = 'def handle(req):\n    return "hello"\n'


def test_stat_counts_the_requests_sent(backend: ApiBackend, functions: Functions) -> None:
    functions.deploy("counted", HELLO)
    backend.wait_for("counted to answer", lambda: backend.invoke("/fn/counted/").status == 200)

    def row() -> dict[str, Any]:
        done = backend.fn("stat", "counted", "--window", "10m", "-o", "json", check=True)
        rows = json.loads(done.stdout)["revisions"]
        found: dict[str, Any] = next(r for r in rows if r["revision"] == "counted-00001")
        return found

    before = row().get("requests", 0)
    for n in range(20):
        assert backend.invoke(f"/fn/counted/?n={n}").status == 200
    found = backend.wait_for(
        "the 20 requests in fn stat", lambda: (r := row())["requests"] >= before + 20 and r
    )
    assert found["successRate"] == 1.0
    assert found["rps"] > 0
    assert 0 < found["p50Ms"] <= found["p95Ms"] <= found["p99Ms"]


def test_tap_shows_each_request(backend: ApiBackend, functions: Functions) -> None:
    functions.deploy("tapped", HELLO)
    backend.wait_for("tapped to answer", lambda: backend.invoke("/fn/tapped/").status == 200)
    tap = backend.watch("tap", "tapped", "--path", "/seen")
    sent = iter(range(1_000_000))

    def traffic() -> None:
        n = next(sent)
        reply = backend.invoke(f"/fn/tapped/seen?n={n}", headers={"x-request-id": f"t{n}"})
        assert reply.status == 200, reply

    def answered(lines: list[str]) -> bool:
        ends = {word for line in lines if line.startswith("end ") for word in line.split()}
        return any(line.startswith("req ") and line.split()[1] in ends for line in lines)

    try:
        lines = tap.until("a tapped request's req and end lines", answered, traffic)
    finally:
        code = tap.stop()
    assert code == 0, "Ctrl-C ends fn tap quietly"
    requests = [line for line in lines if line.startswith("req ")]
    assert requests and all(":path=/seen" in line for line in requests), lines
    assert all("dst=tapped.default.serviceaccount.identity." in line for line in requests)
