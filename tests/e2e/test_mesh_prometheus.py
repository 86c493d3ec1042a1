"""A real Prometheus scrapes a running platform; Linkerd's queries work on what it gets.

Debian's ``prometheus`` binary is started with a temporary configuration that scrapes,
every half second (``static_configs``), the metrics URLs the Revision status lists -- the
replica proxies' inbound side -- and the platform's own ``/metrics`` on the API port,
where the gateway's outbound (mTLS) side is. The success rate Prometheus computes with
Linkerd's query must match the responses the client actually got, on both sides.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.e2e import Platform, http, wait_for

PROMETHEUS = shutil.which("prometheus")
NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
SUCCESS_RATE = (
    'sum(rate(response_total{classification="success"}[1m])) / sum(rate(response_total[1m]))'
)
# the same, on one side: Prometheus' job of the replica proxies, or of the platform
SIDE_SUCCESS_RATE = (
    'sum(rate(response_total{{job="{job}",classification="success"}}[1m]))'
    ' / sum(rate(response_total{{job="{job}"}}[1m]))'
)
P99 = "histogram_quantile(0.99, sum(rate(response_latency_ms_bucket[1m])) by (le))"

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="needs Debian's `prometheus` binary: apt-get install prometheus",
)

FLAKY = '''\
"""Fails on purpose: a path under /fail answers 500, anything else 200."""

from fnmesh.functions import Request


def handle(req: Request):
    if req.path.startswith("/fail"):
        return "failed on purpose\\n", 500
    return "ok\\n"
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """``prometheus`` scraping, for each job, its ``targets`` (``host:port``) at /metrics."""

    def __init__(
        self,
        folder: Path,
        jobs: dict[str, list[str]],
        interval: str = "500ms",
        tokens: dict[str, str] | None = None,
    ) -> None:
        """``tokens``: the bearer token a job's scrapes send (the platform's needs one)."""
        folder.mkdir()
        tokens = tokens or {}
        self.url = f"http://127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": targets}],
                    **(
                        {"authorization": {"type": "Bearer", "credentials": tokens[job]}}
                        if job in tokens
                        else {}
                    ),
                }
                for job, targets in jobs.items()
            ],
        }
        (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = folder / "prometheus.log"
        assert PROMETHEUS is not None
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for("prometheus to be ready", self._ready)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()}")
        return http("GET", self.url + "/-/ready", timeout=2).status == 200

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector ``expression`` evaluates to now."""
        reply = http(
            "GET", f"{self.url}/api/v1/query?query={urllib.parse.quote(expression)}", timeout=10
        )
        assert reply.status == 200, reply
        data = reply.json()
        assert data["status"] == "success", data
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def scalar(self, expression: str) -> float | None:
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def started() -> Iterator[list[Prometheus]]:
    """Prometheus servers a test starts; stopped when it ends."""
    servers: list[Prometheus] = []
    yield servers
    for server in servers:
        server.stop()


def metrics_targets(platform: Platform, function: str) -> list[str]:
    reply = http("GET", f"{platform.api}{NS}/revisions?function={function}", headers=platform.auth)
    urls = [
        replica["metricsUrl"]
        for revision in reply.json()["items"]
        for replica in revision["status"].get("replicas", [])
        if replica.get("ready") and replica.get("metricsUrl")
    ]
    parts = [urllib.parse.urlsplit(url) for url in urls]
    assert all(p.path == "/metrics" for p in parts), urls
    return [p.netloc for p in parts]


def create_viewer(platform: Platform) -> str:
    """A viewer token, as a Prometheus scrape job of the platform's /metrics would hold."""
    reply = http(
        "POST",
        platform.api + "/apis/fnmesh.dev/v1alpha1/tokens",
        json.dumps({"role": "viewer", "name": "prometheus"}).encode(),
        {**platform.auth, "Content-Type": "application/json"},
    )
    assert reply.status == 201, reply
    return str(reply.json()["token"])


def send_mix(platform: Platform, ok: int, failed: int) -> dict[int, int]:
    """``ok`` requests that succeed and ``failed`` that answer 500, interleaved so that no
    two failures follow each other (the gateway's failure accrual stays out of it);
    returns the statuses the client got."""
    per_failure, extra = divmod(ok, failed)
    assert per_failure >= 1, "more successes than failures, to keep failures apart"
    plan: list[str] = []
    for n in range(failed):
        plan += ["/ok"] * (per_failure + (n < extra)) + ["/fail"]
    statuses: dict[int, int] = {}
    for n, path in enumerate(plan):
        status = platform.invoke(f"/fn/flaky{path}?n={n}").status
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def test_linkerds_success_rate_query_matches_the_responses_sent(
    platform: Platform, tmp_path: Path, started: list[Prometheus]
) -> None:
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    (flaky / "fn.yaml").write_text("name: flaky\nhandler: main:handle\n")
    (flaky / "main.py").write_text(FLAKY)
    platform.fn("deploy", str(flaky), check=True)
    # Both series exist before the first scrape, in the proportion of the mix that
    # follows: Prometheus' rate() then extrapolates both the same way.
    assert send_mix(platform, 3, 1) == {200: 3, 500: 1}
    proxies = metrics_targets(platform, "flaky")
    assert len(proxies) == 1
    gateway = urllib.parse.urlsplit(platform.api).netloc  # the platform's own /metrics
    jobs = {"proxies": proxies, "platform": [gateway]}
    viewer = create_viewer(platform)
    prometheus = Prometheus(tmp_path / "prometheus", jobs, tokens={"platform": viewer})
    started.append(prometheus)
    wait_for(
        "prometheus to scrape both series on both sides",
        lambda: prometheus.scalar('count(response_total{function="flaky"})') == 4,
    )

    statuses = send_mix(platform, 60, 20)
    sent = sum(statuses.values())
    assert set(statuses) <= {200, 500}, statuses
    wait_for(
        "prometheus to scrape every response, on both sides",
        lambda: all(
            prometheus.scalar(f'sum(response_total{{job="{job}"}})') == sent + 4 for job in jobs
        ),
    )

    expected = statuses[200] / sent
    assert prometheus.scalar(SUCCESS_RATE) == pytest.approx(expected, abs=1e-6)
    for job in jobs:
        rate = prometheus.scalar(SIDE_SUCCESS_RATE.format(job=job))
        assert rate == pytest.approx(expected, abs=1e-6), job
    series = prometheus.query('response_total{function="flaky"}')
    assert {s["metric"]["classification"] for s in series} == {"success", "failure"}
    for labels in (s["metric"] for s in series):
        assert labels["tls"] == "true"  # both sides of the hop: mTLS
        assert labels["namespace"] == "default" and labels["revision"] == "flaky-00001"
        if labels["job"] == "proxies":
            assert labels["direction"] == "inbound"
            assert labels["client_id"].startswith("gateway.fnmesh-system.serviceaccount.")
        else:
            assert labels["direction"] == "outbound"
            assert labels["server_id"].startswith("flaky.default.serviceaccount.identity.")
    p99 = prometheus.scalar(P99)
    assert p99 is not None and math.isfinite(p99) and 0 < p99 <= 1000
