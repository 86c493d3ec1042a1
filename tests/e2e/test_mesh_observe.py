"""Watching the mesh of a running platform: `fn tap`, `fn stat`, `fn describe`.

One real `fn up` for the module, with the hello example deployed; the CLI runs as a
subprocess, and live output is read line by line with a deadline.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.e2e import EXAMPLES, Platform, http, wait_for

from fnmesh.platform.cli.commands.tap import TapPrinter, duration

REVISION = "hello-00001"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(tmp_path_factory.mktemp("mesh") / "home")
    running.home.mkdir()
    running.start()
    try:
        running.fn("deploy", str(EXAMPLES / "hello"), check=True)
        yield running
    finally:
        running.stop()


class Live:
    """A command's stdout, read in a thread so the test can wait on it with a deadline."""

    def __init__(self, platform: Platform, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fnmesh.platform.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=platform.env(),
        )
        self.lines: list[str] = []
        self.stderr = ""
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def collect(self) -> list[str]:
        """The lines printed since the last call."""
        new = []
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                new.append(line)
        self.lines += new
        return new

    def until(
        self, what: str, done: Callable[[list[str]], bool], meanwhile: Callable[[], None]
    ) -> list[str]:
        """Call ``meanwhile`` (e.g. send traffic) until the lines so far satisfy ``done``."""
        deadline = time.monotonic() + 30.0
        while not done(self.lines):
            if self.process.poll() is not None:
                self.collect()
                raise AssertionError(f"the command exited {self.process.returncode}: {self.text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; output: {self.text}")
            meanwhile()
            self.collect()
        return self.lines

    def interrupt(self) -> int:
        """Ctrl-C, as a person would stop it; the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(10)
        finally:
            self.process.kill()
            self.process.wait()
            self._reader.join(5)
            self.collect()
            self.stderr = self._close()

    def _close(self) -> str:
        stderr = ""
        if self.process.stderr is not None:
            stderr = self.process.stderr.read()
            self.process.stderr.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return stderr

    @property
    def text(self) -> str:
        stderr = self._close() if self.process.poll() is not None else ""
        return "\n".join(self.lines) + ("\nstderr: " + stderr if stderr else "")


def fields(line: str) -> dict[str, str]:
    """``req id=x src=y :path=/z`` -> {"kind": "req", "id": "x", "src": "y", ":path": "/z"}."""
    kind, *pairs = line.split(" ")
    found = {"kind": kind}
    for pair in pairs:
        key, _, value = pair.partition("=")
        found[key] = value
    return found


def test_tap_shows_live_requests_matching_its_filters(mesh: Platform) -> None:
    by_path = Live(mesh, "tap", "hello", "--path", "/tapped")
    as_json = Live(mesh, "tap", "hello", "--method", "POST", "-o", "json")
    sent = iter(range(1_000_000))

    def traffic() -> None:
        n = next(sent)
        for method, path in (("GET", "/tapped"), ("GET", "/other"), ("POST", "/posted")):
            reply = mesh.invoke(
                f"/fn/hello{path}?n={n}",
                method,
                b"{}" if method == "POST" else None,
                {"x-request-id": f"t{n}-{path.strip('/')}"},
            )
            assert reply.status == 200, reply
        time.sleep(0.05)

    def answered(lines: list[str]) -> bool:
        ids = [fields(line) for line in lines]
        ends = {f["id"] for f in ids if f["kind"] == "end"}
        return any(f["kind"] == "req" and f["id"] in ends for f in ids)

    try:
        by_path.until("a tapped request's req and end lines", answered, traffic)
        events = as_json.until(
            "tapped POST events", lambda ls: any('"response-end"' in line for line in ls), traffic
        )
    finally:
        codes = [by_path.interrupt(), as_json.interrupt()]
    assert codes == [0, 0], "Ctrl-C ends `fn tap` quietly"

    parsed = [fields(line) for line in by_path.lines]
    assert parsed and {f["kind"] for f in parsed} <= {"req", "rsp", "end"}
    requests = [f for f in parsed if f["kind"] == "req"]
    # only the requests the filter asked for, with the ids the client gave them
    assert requests and all(f[":path"] == "/tapped" and f[":method"] == "GET" for f in requests)
    assert all(f["id"].startswith("t") and f["id"].endswith("-tapped") for f in parsed)
    first = next(f for f in requests)
    rsp = next(f for f in parsed if f["kind"] == "rsp" and f["id"] == first["id"])
    end = next(f for f in parsed if f["kind"] == "end" and f["id"] == first["id"])
    assert rsp[":status"] == "200" and rsp["latency"].endswith(("µs", "ms"))
    assert end["bytes"] == str(len(b"Hello, world!\n")) and end["duration"] != "-"
    # the mesh's view of who called whom, over mTLS
    assert first["tls"] == "true"
    assert first["src"].startswith("gateway.fnmesh-system.serviceaccount.identity.")
    assert first["dst"].startswith("hello.default.serviceaccount.identity.")

    decoded = [json.loads(line) for line in events]
    assert decoded and all(e["method"] == "POST" and e["path"] == "/posted" for e in decoded)
    assert {e["type"] for e in decoded} >= {"request-init", "response-end"}
    assert all(e["revision"] == REVISION for e in decoded)


def test_stat_reports_the_traffic_sent(mesh: Platform) -> None:
    def stats() -> dict[str, Any]:
        done = mesh.fn("stat", "hello", "--window", "10m", "-o", "json", check=True)
        data: dict[str, Any] = json.loads(done.stdout)
        return next(r for r in data["revisions"] if r["revision"] == REVISION)

    before = stats().get("requests", 0)
    for n in range(20):
        assert mesh.invoke(f"/fn/hello/?n={n}").status == 200
    row = wait_for(
        "the 20 requests in fn stat", lambda: (r := stats())["requests"] >= before + 20 and r
    )
    assert row["successRate"] == 1.0
    assert row["rps"] > 0
    assert 0 < row["p50Ms"] <= row["p95Ms"] <= row["p99Ms"]

    table = mesh.fn("stat", "hello", check=True).stdout.splitlines()
    assert table[0].split() == [
        "REVISION",
        "SUCCESS",
        "RPS",
        "LATENCY_P50",
        "LATENCY_P95",
        "LATENCY_P99",
        "REQUESTS",
    ]
    cells = table[1].split()
    assert cells[0] == REVISION and cells[1] == "100.00%"
    assert all(cell.endswith("ms") for cell in cells[3:6])


def test_describe_names_each_replicas_proxy_and_metrics(mesh: Platform) -> None:
    done = mesh.fn("describe", "hello", "-o", "json", check=True)
    revision = json.loads(done.stdout)["revisions"][0]
    replicas = revision["status"]["replicas"]
    assert len(replicas) == 1
    replica = replicas[0]
    # the metrics URL is the proxy's admin endpoint, in Prometheus' text format
    metrics = http("GET", replica["metricsUrl"])
    assert metrics.status == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert f'revision="{REVISION}"' in metrics.body.decode()
    assert b"identity_cert_expiration_timestamp_seconds" in metrics.body
    # the address is the proxy's mTLS listener: plaintext gets no HTTP answer there
    host, _, port = replica["address"].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        try:
            answer = conn.recv(100)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")


def test_tap_printer_lines() -> None:
    printer = TapPrinter()
    common = {
        "id": "abc",
        "source": "gateway.x",
        "destination": "hello.y",
        "tls": True,
        "method": "GET",
        "authority": "h:1",
        "path": "/p",
    }
    req = {"type": "request-init", "time": 100.0, **common, "bytes": 0}
    rsp = {"type": "response-init", "time": 100.0012, **common, "status": 503}
    end = {"type": "response-end", "time": 100.0012, **common, "status": 503, "bytes": 7}
    assert printer.line(req) == (
        "req id=abc src=gateway.x dst=hello.y tls=true :method=GET :authority=h:1 :path=/p"
    )
    assert (
        printer.line(rsp)
        == "rsp id=abc src=gateway.x dst=hello.y tls=true :status=503 latency=1.2ms"
    )
    assert (
        printer.line(end) == "end id=abc src=gateway.x dst=hello.y tls=true duration=1.2ms bytes=7"
    )
    # the proxy's own measure, where the event carries one, is the one shown
    late = {**end, "latencyMs": 0.25}
    assert (
        printer.line(late) == "end id=abc src=gateway.x dst=hello.y tls=true duration=250µs bytes=7"
    )
    assert printer.line({}) is None
    assert [duration(v) for v in (None, 0.0004, 12.34, 340.0, 25_000.0)] == [
        "-",
        "0µs",
        "12.3ms",
        "340ms",
        "25.0s",
    ]


def test_tap_and_stat_refuse_bad_input(mesh: Platform) -> None:
    done = mesh.fn("tap", "hello", "--path", "nope")
    assert done.returncode == 2 and "must start with '/'" in done.stderr
    done = mesh.fn("stat", "hello", "--window", "2h")
    assert done.returncode == 2 and "from 1s to 10m" in done.stderr
    done = mesh.fn("stat", "nosuch")
    assert done.returncode == 1 and "not found" in done.stderr
    done = mesh.fn("tap", "nosuch")
    assert done.returncode == 1 and "not found" in done.stderr
