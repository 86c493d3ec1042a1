"""``fn stat`` and ``fn tap`` through the API, whichever process holds the hub."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

from apikit import running_api
from support.rollouts import deploy

from fnmesh.platform.mesh.identity import CertificateAuthority, client_context
from fnmesh.platform.telemetry.client import HubClient
from fnmesh.platform.telemetry.hub import TelemetryHub
from fnmesh.platform.telemetry.report import parse_report


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_stat_reads_the_hub_in_process(tmp_path: Path) -> None:
    hub = TelemetryHub()
    async with running_api(tmp_path, telemetry=hub) as api:
        deploy(api.store, 1)
        revision = await api.until(
            "a revision", lambda: api.function().status.latest_created_revision
        )
        hub.ingest(
            parse_report(
                {
                    "namespace": "default",
                    "function": "hello",
                    "revision": revision,
                    "replica": f"{revision}-a",
                    "requests": 4,
                    "success": 3,
                    "failure": 1,
                }
            )
        )
        status, body = await api.call("GET", "/functions/hello/stats", window="30")
        assert status == 200
        (row,) = [r for r in body["revisions"] if r["revision"] == revision]
        assert (row["requests"], row["successRate"], row["window"]) == (4, 0.75, 30.0)
        status, body = await api.call("GET", "/functions/hello/stats", window="601")
        assert status == 400 and "between 1 and 600" in str(body)


async def test_a_hub_that_cannot_be_reached_is_a_503_naming_why(tmp_path: Path) -> None:
    authority = CertificateAuthority.create(datetime.datetime.now(datetime.UTC))
    client = HubClient(
        f"https://127.0.0.1:{closed_port()}",
        tls=client_context(authority.trust_anchors_pem),
        server_identity="telemetry.fnmesh-system.serviceaccount.identity.fnmesh.local",
        timeout=2.0,
    )
    async with running_api(tmp_path, telemetry=client) as api:
        deploy(api.store, 1)
        await api.until("a revision", lambda: api.function().status.latest_created_revision)
        for path in ("/functions/hello/stats", "/functions/hello/tap"):
            status, body = await api.call("GET", path)
            assert status == 503, (path, body)
            assert "telemetry hub cannot be reached" in str(body), body
    await client.close()
