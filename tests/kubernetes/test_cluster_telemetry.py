"""One telemetry plane on a cluster, as real processes against an in-memory Kubernetes API.

The API (which holds the identity endpoint), the telemetry hub and the autoscaler run as
the chart runs them; the hub gets its certificate with its reviewed token. A replica
proxy's report, posted over mTLS with the function's workload certificate, shows in
``fn stat`` through the cluster API, its load reaches the autoscaler (which scales the
revision's Deployment), and a ``fn tap`` session opened through the API receives the
report's tap events.
"""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kmockapi import ApiThread, KubeApi
from support.e2e import wait_for
from test_cluster_processes import REVIEWS, Processes, answer, replicas, scaled_to_zero

from fnmesh.platform.mesh.identity import (
    Certifier,
    OneTimeTokenVerifier,
    TlsCredentials,
    TokenIssuer,
    client_context,
    component_identity,
    identity_name,
    make_csr,
)

pytestmark = pytest.mark.e2e

TOKEN = "the-admin-token-of-the-chart"
HUB = component_identity("telemetry")
FN = (sys.executable, "-m", "fnmesh.platform.cli")
STATS = "/apis/fnmesh.dev/v1alpha1/namespaces/default/functions/hello"


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    api = KubeApi()
    api["post " + REVIEWS] << answer
    with ApiThread(api, namespaces=("default", "fnmesh-system")) as thread:
        yield thread


def workload_context(processes: Processes, identity: str) -> ssl.SSLContext:
    """A client context presenting ``identity``, as the function's proxy would."""
    authority = processes.authority
    certifier = Certifier(authority, OneTimeTokenVerifier(TokenIssuer()))
    request = make_csr(identity)
    issued = certifier.issue(request.csr_pem, identity, datetime.datetime.now(datetime.UTC))
    credentials = TlsCredentials(issued.chain_pem, request.key_pem)
    return client_context(authority.trust_anchors_pem, credentials)


def post_report(
    port: int, context: ssl.SSLContext, report: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """POST a report as a proxy does: mTLS, the hub checked against its identity."""
    body = json.dumps(report).encode()
    head = (
        "POST /v1/stats HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HUB) as tls,
    ):
        tls.sendall(head.encode() + body)
        response = http.client.HTTPResponse(tls)
        response.begin()
        return response.status, json.loads(response.read())


def report(**extra: Any) -> dict[str, Any]:
    return {
        "namespace": "default",
        "function": "hello",
        "revision": "hello-00001",
        "replica": "hello-00001-x7k2p",
        "concurrency": 1.5,
        "interval": 1.0,
        "requests": 40,
        "success": 38,
        "failure": 2,
        "latencyBuckets": {"5": 30, "10": 10},
        **extra,
    }


def fn_stat(home: Path) -> dict[str, Any]:
    done = subprocess.run(
        [*FN, "stat", "hello", "-o", "json", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_a_proxy_report_reaches_fn_stat_and_fn_tap_through_the_cluster_api(
    cluster: ApiThread, tmp_path: Path
) -> None:
    scaled_to_zero(cluster)
    processes = Processes(tmp_path, cluster)
    api = f"http://127.0.0.1:{processes.ports['api']}"
    home = tmp_path / "home"
    home.mkdir()
    context = {"api": api, "gateway": "http://127.0.0.1:1", "token": TOKEN}
    (home / "context.json").write_text(json.dumps(context))
    try:
        processes.start("api")
        processes.wait_listening("api", "identity")
        for component in ("telemetry", "autoscaler"):
            processes.start(component)
        for component in ("telemetry", "autoscaler"):
            processes.wait_listening(component)
        hub = processes.ports["telemetry"]
        proxy = workload_context(processes, identity_name("hello", "default"))

        # another namespace's workload may not speak for this one
        intruder = workload_context(processes, identity_name("mallory", "other"))
        assert post_report(hub, intruder, report())[0] == 403

        status, reply = post_report(hub, proxy, report())
        assert (status, reply) == (200, {"tap": None})  # nobody taps yet
        (row,) = fn_stat(home)["revisions"]
        assert row["revision"] == "hello-00001"
        assert row["requests"] == 40
        assert row["successRate"] == pytest.approx(0.95)
        assert 0 < row["p50Ms"] <= 5 < row["p99Ms"] <= 10

        # the load in the reports is relayed to the autoscaler, which scales from zero
        wait_for(
            "the autoscaler to scale on the hub's load",
            lambda: (
                post_report(hub, proxy, report(concurrency=5))[0] == 200 and replicas(cluster) >= 1
            ),
            timeout=30,
        )

        lines: list[dict[str, Any]] = []
        opened = threading.Event()

        def tap() -> None:
            request = urllib.request.Request(
                f"{api}{STATS}/tap?method=POST",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            with urllib.request.urlopen(request, timeout=30) as stream:
                for raw in stream:
                    line = json.loads(raw)
                    lines.append(line)
                    opened.set()
                    if line.get("method") == "POST":
                        return

        tapper = threading.Thread(target=tap, daemon=True)
        tapper.start()
        assert opened.wait(30), processes.log("api")
        assert lines[0] == {"event": "started", "function": "hello"}
        event = {"method": "POST", "path": "/orders", "status": 201, "revision": "hello-00001"}
        status, reply = post_report(hub, proxy, report(tap=[event]))
        assert status == 200
        assert reply == {"tap": {"filters": {"method": "POST"}}}  # the reporter is told
        tapper.join(30)
        assert lines[-1]["path"] == "/orders" and lines[-1]["status"] == 201
        wait_for(
            "the tap session to end with its stream",
            lambda: post_report(hub, proxy, report())[1] == {"tap": None},
            timeout=30,
        )
    finally:
        codes = processes.stop()
    logs = {c: processes.log(c) for c in codes}
    assert codes == dict.fromkeys(codes, 0), logs
    assert "certified as telemetry" in logs["telemetry"], logs["telemetry"]
