"""The proxy as a real process: certificate from a real identity service with a one-time
token, ready on the fd, traffic over mTLS, SIGTERM drain with the last stats report, exit
codes, memory and what it imports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from proxykit import (
    CALLER,
    HELLO,
    TELEMETRY,
    Upstream,
    call,
    real_now,
    wait_until,
    write_policy,
)

from fnmesh.platform.http import ConnectionPool, HttpServer, Peer, Request, Response, serve
from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    Certifier,
    OneTimeTokenVerifier,
    TokenIssuer,
    check_csr,
    client_context,
    make_csr,
    server_context,
)
from fnmesh.platform.mesh.identity import TlsCredentials as Credentials
from fnmesh.platform.mesh.identity.service import IdentityService

pytestmark = pytest.mark.e2e
READY_TIMEOUT = 30.0


@dataclass
class StatsEndpoint:
    reports: list[dict[str, Any]] = field(default_factory=list)
    server: HttpServer | None = None

    async def handle(self, request: Request, peer: Peer) -> Response:
        self.reports.append(json.loads(request.body))
        return Response(200, [], b'{"tap": null}')


@dataclass
class Platform:
    """What a proxy needs around it: identity service, trust anchors, runtime, policy."""

    tmp: Path
    authority: CertificateAuthority
    tokens: TokenIssuer
    identity: IdentityService
    upstream: Upstream
    stats: StatsEndpoint
    anchors_file: Path
    policy_file: Path

    def issue(self, identity: str) -> Credentials:
        request = make_csr(identity)
        issued = self.authority.issuer.sign(
            check_csr(request.csr_pem, identity), identity, real_now()
        )
        return Credentials(issued.chain_pem, request.key_pem)

    def client(self, identity: str) -> Any:
        return client_context(self.authority.trust_anchors_pem, self.issue(identity))

    def env(self, **overrides: str) -> dict[str, str]:
        assert self.stats.server is not None
        env = {
            "PATH": os.environ.get("PATH", ""),
            "FNMESH_PROXY_INBOUND_HOST": "127.0.0.1",
            "FNMESH_PROXY_UPSTREAM": f"127.0.0.1:{self.upstream.port}",
            "FNMESH_PROXY_IDENTITY": HELLO,
            "FNMESH_PROXY_IDENTITY_URL": self.identity.url,
            "FNMESH_PROXY_TRUST_ANCHORS": str(self.anchors_file),
            "FNMESH_PROXY_BOOTSTRAP_TOKEN": self.tokens.mint(HELLO, real_now()),
            "FNMESH_PROXY_NAMESPACE": "default",
            "FNMESH_PROXY_FUNCTION": "hello",
            "FNMESH_PROXY_REVISION": "hello-00001",
            "FNMESH_PROXY_REPLICA": "hello-00001-test",
            "FNMESH_PROXY_POLICY_FILE": str(self.policy_file),
            "FNMESH_PROXY_STATS_URL": f"https://127.0.0.1:{self.stats.server.port}/v1/stats",
            "FNMESH_PROXY_STATS_INTERVAL": "60s",  # only the report at shutdown
            "FNMESH_PROXY_DRAIN_TIMEOUT": "20s",
        }
        return {**env, **overrides}


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    authority = CertificateAuthority.create(real_now())
    tokens = TokenIssuer()
    identity = IdentityService(Certifier(authority, OneTimeTokenVerifier(tokens)))
    await identity.start()
    upstream = await Upstream().start()
    stats = StatsEndpoint()
    stats_context = server_context(authority.trust_anchors_pem, _issue(authority, TELEMETRY))
    stats.server = await serve(stats.handle, "127.0.0.1", 0, ssl=stats_context)
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(authority.trust_anchors_pem)
    policy = tmp_path / "policy.json"
    write_policy(policy, public=False, allow=(CALLER,))
    try:
        yield Platform(tmp_path, authority, tokens, identity, upstream, stats, anchors, policy)
    finally:
        await upstream.close()
        await stats.server.close(1.0)
        await identity.close()


def _issue(authority: CertificateAuthority, identity: str) -> Credentials:
    request = make_csr(identity)
    issued = authority.issuer.sign(check_csr(request.csr_pem, identity), identity, real_now())
    return Credentials(issued.chain_pem, request.key_pem)


@dataclass
class ProxyProcess:
    process: asyncio.subprocess.Process
    inbound_port: int
    admin_port: int

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 30)

    def status(self, field_name: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field_name} in /proc status")


async def launch(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """Start the proxy with a ready pipe; return the process and its ready line ('' if none)."""
    read_fd, write_fd = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fnmesh.platform.mesh.proxy",
            "--ready-fd",
            str(write_fd),
            env=env,
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(write_fd)
    loop = asyncio.get_running_loop()
    with os.fdopen(read_fd, "rb") as ready:
        line = await asyncio.wait_for(loop.run_in_executor(None, ready.readline), READY_TIMEOUT)
    return process, line.decode().strip()


@pytest.fixture
async def proxy(platform: Platform) -> AsyncIterator[ProxyProcess]:
    process, line = await launch(platform.env())
    parts = line.split()
    if len(parts) != 3 or parts[0] != "ready":
        assert process.stderr is not None
        output = await process.stderr.read()
        raise AssertionError(f"no ready line ({line!r}); stderr:\n{output.decode()}")
    running = ProxyProcess(process, int(parts[1]), int(parts[2]))
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def admin(port: int, path: str) -> Response:
    pool = ConnectionPool()
    try:
        return await pool.request("127.0.0.1", port, Request("GET", path.encode(), []), timeout=5)
    finally:
        await pool.close()


async def test_sigterm_completes_in_flight_requests_and_sends_a_last_report(
    platform: Platform, proxy: ProxyProcess
) -> None:
    context = platform.client(CALLER)
    assert (await call(proxy.inbound_port, context, b"/first")).status == 200
    assert (await admin(proxy.admin_port, "/ready")).status == 200
    held = [asyncio.create_task(call(proxy.inbound_port, context, b"/hold")) for _ in range(3)]
    await wait_until("three requests held", lambda: platform.upstream.holding == 3)
    proxy.process.send_signal(signal.SIGTERM)

    async def draining() -> bool:
        return (await admin(proxy.admin_port, "/ready")).status == 503

    for _ in range(500):
        if await draining():
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the proxy never reported draining")
    assert proxy.process.returncode is None, "it waits for the requests in flight"
    platform.upstream.release.set()
    assert [(await task).status for task in held] == [200, 200, 200]
    assert await asyncio.wait_for(proxy.process.wait(), 30) == 0
    (last,) = platform.stats.reports  # the interval is a minute: only the last report
    assert (last["requests"], last["success"], last["failure"]) == (4, 4, 0)
    assert last["replica"] == "hello-00001-test"


async def test_plaintext_and_foreign_certificates_are_refused(
    platform: Platform, proxy: ProxyProcess
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.inbound_port)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    other = CertificateAuthority.create(real_now())
    foreign = client_context(platform.authority.trust_anchors_pem, _issue(other, CALLER))
    with pytest.raises(Exception, match=r"(?i)reset|closed|certificate|alert|eof"):
        await call(proxy.inbound_port, foreign)
    text = (await admin(proxy.admin_port, "/metrics")).body.decode()
    refused = {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "inbound_tls_handshake_failure_total"
    }
    assert refused == {"plaintext": 1, "untrusted_certificate": 1}
    assert platform.upstream.seen == []
    assert await proxy.stop() == 0


async def test_idle_memory_stays_small(platform: Platform, proxy: ProxyProcess) -> None:
    context = platform.client(CALLER)
    pool = ConnectionPool()
    for _ in range(20):
        assert (await call(proxy.inbound_port, context, b"/", pool=pool)).status == 200
    await pool.close()
    await admin(proxy.admin_port, "/metrics")
    rss_kib = proxy.status("VmRSS")
    print(f"idle proxy: VmRSS {rss_kib} KiB, RssAnon {proxy.status('RssAnon')} KiB")
    assert rss_kib <= 64 * 1024, f"the idle proxy uses {rss_kib} KiB"
    assert await proxy.stop() == 0


async def test_in_front_of_the_real_function_runtime(platform: Platform) -> None:
    read_fd, write_fd = os.pipe()
    examples = Path(__file__).parents[2] / "functions" / "examples" / "hello"
    runtime = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fnmesh.functions",
        "--source",
        str(examples),
        "--handler",
        "main:handle",
        "--ready-fd",
        str(write_fd),
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        loop = asyncio.get_running_loop()
        with os.fdopen(read_fd, "rb") as ready:
            line = await asyncio.wait_for(loop.run_in_executor(None, ready.readline), 30)
        runtime_port = int(line.split()[1])
        process, line = await launch(
            platform.env(FNMESH_PROXY_UPSTREAM=f"127.0.0.1:{runtime_port}")
        )
        proxy = ProxyProcess(process, int(line.split()[1]), int(line.split()[2]))
        try:
            answer = await call(proxy.inbound_port, platform.client(CALLER), b"/?name=mesh")
            assert (answer.status, answer.body) == (200, b"Hello, mesh!\n")
            assert answer.header(b"x-request-id")
            assert (await admin(proxy.admin_port, "/ready")).status == 200
            assert await proxy.stop() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    finally:
        runtime.send_signal(signal.SIGTERM)
        await asyncio.wait_for(runtime.wait(), 30)


async def test_bad_configuration_names_every_variable(platform: Platform) -> None:
    env = platform.env(FNMESH_PROXY_CONCURRENCY="-1", FNMESH_PROXY_UPSTREAM="nowhere")
    del env["FNMESH_PROXY_IDENTITY"]
    process, line = await launch(env)
    assert line == ""
    assert process.stderr is not None
    output = (await process.stderr.read()).decode()
    assert await process.wait() == 2
    for name in ("FNMESH_PROXY_CONCURRENCY", "FNMESH_PROXY_UPSTREAM", "FNMESH_PROXY_IDENTITY"):
        assert name in output


async def test_a_refused_token_exits_5(platform: Platform) -> None:
    env = platform.env(FNMESH_PROXY_BOOTSTRAP_TOKEN="not-a-token")
    process, line = await launch(env)
    assert line == ""
    assert process.stderr is not None
    output = (await process.stderr.read()).decode()
    assert await process.wait() == 5
    assert "refused" in output


def _imported_by_the_proxy() -> set[str]:
    script = (
        "import sys, fnmesh.platform.mesh.proxy.main; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(result.stdout.split())


def test_the_proxy_does_not_import_the_web_frameworks() -> None:
    assert {"starlette", "uvicorn", "kopf", "kubernetes"} & _imported_by_the_proxy() == set()


def test_the_proxy_does_not_import_aiohttp() -> None:
    assert "aiohttp" not in _imported_by_the_proxy()
