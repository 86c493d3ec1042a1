"""Shared pieces for the replica proxy tests: a mesh CA, identities, stub servers, config."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fnmesh.platform.http import (
    ConnectionPool,
    HttpServer,
    Peer,
    Request,
    Response,
    serve,
)
from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    TlsCredentials,
    check_csr,
    client_context,
    component_identity,
    identity_name,
    make_csr,
    server_context,
)
from fnmesh.platform.mesh.proxy.config import (
    Address,
    IdentityConfig,
    Labels,
    LimitsConfig,
    ListenConfig,
    PolicyConfig,
    ProxyConfig,
    StatsConfig,
    TapConfig,
)

HELLO = identity_name("hello", "default")
CALLER = identity_name("caller", "default")
STRANGER = identity_name("stranger", "default")
GATEWAY = component_identity("gateway")
ACTIVATOR = component_identity("activator")
AUTOSCALER = component_identity("autoscaler")
TELEMETRY = component_identity("telemetry")  # the stats listener: the telemetry hub


def real_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Mesh:
    """A trust anchor and issuer in memory, handing out certificates and SSL contexts."""

    def __init__(self) -> None:
        self.authority = CertificateAuthority.create(real_now())

    @property
    def anchors(self) -> str:
        return self.authority.trust_anchors_pem

    def credentials(self, identity: str) -> TlsCredentials:
        request = make_csr(identity)
        issued = self.authority.issuer.sign(
            check_csr(request.csr_pem, identity), identity, real_now()
        )
        return TlsCredentials(issued.chain_pem, request.key_pem)

    def client(self, identity: str | None) -> ssl.SSLContext:
        creds = self.credentials(identity) if identity is not None else None
        return client_context(self.anchors, creds)

    def server(self, identity: str) -> ssl.SSLContext:
        return server_context(self.anchors, self.credentials(identity))


class StaticIdentity:
    """An identity with one certificate from ``mesh``: what the proxy asks of IdentityClient."""

    def __init__(self, mesh: Mesh, identity: str, expires: float | None = None) -> None:
        self.identity = identity
        creds = mesh.credentials(identity)
        self._server = server_context(mesh.anchors, creds)
        self._client = client_context(mesh.anchors, creds)
        self._expires = expires if expires is not None else time.time() + 86400

    @property
    def expiration_timestamp(self) -> float | None:
        return self._expires

    def server_context(self) -> ssl.SSLContext:
        return self._server

    def client_context(self) -> ssl.SSLContext:
        return self._client


@dataclass
class Upstream:
    """A stub function runtime: ``/slow?s=<seconds>``, ``/hold`` (until released), echo."""

    server: HttpServer | None = None
    seen: list[Request] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    holding: int = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def handle(self, request: Request, peer: Peer) -> Response:
        self.seen.append(request)
        path, _, query = request.target.partition(b"?")
        if path == b"/slow":
            await asyncio.sleep(float(query.split(b"=")[1]))
        elif path == b"/hold":
            self.holding += 1
            try:
                await self.release.wait()
            finally:
                self.holding -= 1
        elif path == b"/fail":
            return Response(500, [], b"boom")
        body = {
            "path": path.decode(),
            "method": request.method,
            "headers": {k.decode(): v.decode() for k, v in request.headers},
            "body": request.body.decode(errors="replace"),
        }
        return Response(200, [(b"content-type", b"application/json")], json.dumps(body).encode())

    async def start(self) -> Upstream:
        self.server = await serve(self.handle, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        self.release.set()
        if self.server is not None:
            await self.server.close(1.0)


def write_policy(path: Path, *, public: bool = False, allow: tuple[str, ...] = ()) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"public": public, "allow": list(allow)}))
    temporary.replace(path)


def make_config(
    *,
    upstream_port: int,
    policy_file: Path,
    trust_anchors_pem: str,
    identity: str = HELLO,
    concurrency: int = 0,
    queue_depth: int | None = None,
    request_timeout: float = 10.0,
    drain_timeout: float = 5.0,
    stats_url: str = "",
    stats_interval: float = 1.0,
) -> ProxyConfig:
    depth = queue_depth if queue_depth is not None else (100 * concurrency or 1000)
    return ProxyConfig(
        listen=ListenConfig(Address("127.0.0.1", 0), Address("127.0.0.1", 0)),
        upstream=Address("127.0.0.1", upstream_port),
        identity=IdentityConfig(
            name=identity,
            service_url="https://127.0.0.1:1",
            service_identity=component_identity("identity"),
            trust_anchors_pem=trust_anchors_pem,
            bootstrap_token="unused",
            bootstrap_token_file=None,
        ),
        labels=Labels("default", "hello", "hello-00001", "hello-00001-abc"),
        limits=LimitsConfig(concurrency, depth, request_timeout, drain_timeout, 1024 * 1024),
        stats=StatsConfig(stats_url, stats_interval, TELEMETRY),
        policy=PolicyConfig(policy_file, GATEWAY, ACTIVATOR),
        tap=TapConfig(rate=100.0, buffer=1000),
    )


async def call(
    port: int,
    context: ssl.SSLContext,
    target: bytes = b"/",
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    server_hostname: str = HELLO,
    pool: ConnectionPool | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request to the proxy over mTLS (a fresh pool unless one is given)."""
    own = pool is None
    pool = pool or ConnectionPool()
    try:
        return await pool.request(
            "127.0.0.1",
            port,
            Request(method, target, list(headers or []), body),
            timeout=timeout,
            ssl=context,
            server_hostname=server_hostname,
        )
    finally:
        if own:
            await pool.close()


async def wait_until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (real time) for ``check`` to hold; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


# promtool's lint flags Linkerd's own histogram name: the unit is abbreviated ("_ms"). The
# name is kept for compatibility with Linkerd's dashboards and queries.
KNOWN_LINT = {"response_latency_ms metric names should not contain abbreviated units"}


def promtool_problems(text: bytes) -> set[str]:
    """Run ``promtool check metrics``; its lint findings (parse errors fail the test)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise AssertionError("promtool is not installed: apt-get install -y prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode in (0, 3), f"promtool could not parse the metrics:\n{output}"
    return {line.strip() for line in output.splitlines() if line.strip()}
