"""Hostile loads against a real `fn up`: the platform's memory and loop stay its own.

- Many connections sending multi-MB bodies through the gateway: the platform's resident
  memory stays bounded while they arrive and returns near where it started after.
- A handler printing 100 MB: another function's latency stays low, the output over the
  replica's rate is dropped and counted in the platform's metrics, and the log says so.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.e2e import Platform, http, wait_for

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
BUDGET = 32 * MIB  # the gateway's buffered-body budget in this test's config.yaml
CONFIG = f"gateway: {{max_buffered_bytes: {BUDGET}, max_connections: 400}}\n"


@pytest.fixture
def bounded(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path / "home")
    running.home.mkdir()
    (running.home / "config.yaml").write_text(CONFIG)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def write(folder: Path, name: str, code: str) -> Path:
    folder.mkdir()
    (folder / "fn.yaml").write_text(f"name: {name}\nhandler: main:handle\n")
    (folder / "main.py").write_text(code)
    return folder


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def metric(platform: Platform, name: str, labels: dict[str, str]) -> float:
    text = http("GET", platform.api + "/metrics", headers=platform.auth).body.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no {name}{labels} in the platform's metrics")


async def upload(host: str, port: int, target: str, size: int) -> int:
    """POST ``size`` bytes on a connection of its own; the status (0: no answer)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        chunk = b"b" * (256 * 1024)
        try:
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass  # refused before the body was sent whole: the answer is still there
        line = await asyncio.wait_for(reader.readline(), 60)
        return int(line.split()[1]) if line else 0
    except ConnectionError:
        return 0
    finally:
        writer.close()


SIZE = """\
def handle(req):
    return {"size": len(req.body)}
"""


def test_many_connections_with_large_bodies_leave_the_platforms_memory_bounded(
    bounded: Platform, tmp_path: Path
) -> None:
    bounded.fn("deploy", str(write(tmp_path / "size", "size", SIZE)), check=True)
    assert bounded.invoke("/fn/size/", "POST", b"1234").json() == {"size": 4}
    assert bounded.process is not None
    pid = bounded.process.pid
    before = rss(pid)
    peak = before
    sampling = True

    def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, rss(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    gateway = urllib.parse.urlsplit(bounded.gateway)
    host, port = gateway.hostname or "127.0.0.1", gateway.port or 80
    connections, size = 120, 4 * MIB  # 480 MB offered at once

    async def burst() -> list[int]:
        return await asyncio.gather(
            *(upload(host, port, "/fn/size/", size) for _ in range(connections))
        )

    started = time.monotonic()
    statuses = asyncio.run(burst())
    took = time.monotonic() - started
    sampling = False
    sampler.join()
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 4, statuses  # the budget lets several through at once
    # Without a budget all 480 MB (and copies) would be resident at once.
    assert peak - before < 4 * BUDGET + 64 * MIB, (before, peak, took)
    wait_for(
        "the platform's memory to come back down",
        lambda: rss(pid) - before < 48 * MIB,
        timeout=15,
    )
    assert bounded.invoke("/fn/size/", "POST", b"12").json() == {"size": 2}


NOISY = """\
import sys


def handle(req):
    block = ("n" * 99 + "\\n") * 10_000
    for _ in range(100):  # 100 MB in lines of 100 bytes
        sys.stdout.write(block)
    return "printed"
"""
QUIET = """\
def handle(req):
    return "quiet"
"""


def test_a_handler_printing_100_mb_does_not_slow_another_function(
    platform: Platform, tmp_path: Path
) -> None:
    platform.fn("deploy", str(write(tmp_path / "noisy", "noisy", NOISY)), check=True)
    platform.fn("deploy", str(write(tmp_path / "quiet", "quiet", QUIET)), check=True)
    assert platform.invoke("/fn/quiet/").status == 200
    dropped_before = metric(platform, "log_dropped_lines_total", {"reason": "rate"})

    noisy: list[int] = []

    def print_100_mb() -> None:
        noisy.append(platform.invoke("/fn/noisy/").status)

    printer = threading.Thread(target=print_100_mb, daemon=True)
    printer.start()
    latencies = []  # of calls made while the other function prints
    deadline = time.monotonic() + 60
    while printer.is_alive() and time.monotonic() < deadline:
        started = time.perf_counter()
        assert platform.invoke("/fn/quiet/").status == 200
        if printer.is_alive():
            latencies.append(time.perf_counter() - started)
    printer.join(60)
    assert noisy == [200]  # the replica never blocked on its output
    assert len(latencies) >= 10, f"only {len(latencies)} calls while printing"
    p50 = statistics.median(latencies)
    assert p50 < 0.05, f"quiet p50 {p50 * 1000:.1f} ms over {len(latencies)} calls"

    dropped = wait_for(
        "the dropped output to be counted",
        lambda: (
            metric(platform, "log_dropped_lines_total", {"reason": "rate"}) - dropped_before
            > 50_000
            or None
        ),
    )
    assert dropped
    log = platform.home / "logs" / "default" / "noisy.log"
    wait_for(
        "the log to say how much was dropped",
        lambda: "of output dropped: over the limit" in log.read_text(errors="replace"),
        timeout=15,
    )
    assert log.stat().st_size < 8 * MIB
