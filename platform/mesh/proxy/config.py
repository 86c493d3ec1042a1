"""The replica proxy's settings: ``FNMESH_PROXY_*`` environment variables, validated once.

Every variable is read, every problem is collected with the variable's name and what it
accepts, and only then does ``from_env`` fail (``ValidationError``) -- or return a frozen,
grouped ``ProxyConfig``. Durations accept seconds (``30``, ``1.5``) or ``500ms``/``30s``/``2m``.

=====================================  =========================================  ===========
variable                               meaning                                    default
=====================================  =========================================  ===========
FNMESH_PROXY_INBOUND_HOST / _PORT      mTLS listener (port 0: any free port)      0.0.0.0 / 0
FNMESH_PROXY_ADMIN_HOST / _PORT        /metrics, /ready, /live (plain HTTP)       127.0.0.1 / 0
FNMESH_PROXY_UPSTREAM                  the function runtime, ``host:port``        required
FNMESH_PROXY_IDENTITY                  this replica's identity name               required
FNMESH_PROXY_IDENTITY_URL              identity service, ``https://host:port``    required
FNMESH_PROXY_IDENTITY_SERVER           the identity service's own identity        component id.
FNMESH_PROXY_TRUST_DOMAIN              the identities' trust domain               fnmesh.local
FNMESH_PROXY_TRUST_ANCHORS             trust anchor PEM file (or the PEM text)    required
FNMESH_PROXY_BOOTSTRAP_TOKEN           one-time credential for the first cert     one of these
FNMESH_PROXY_BOOTSTRAP_TOKEN_FILE      ... or a file holding it, read when used   two
FNMESH_PROXY_NAMESPACE / _FUNCTION     labels of metrics and reports              required
FNMESH_PROXY_REVISION                  (ditto)                                    required
FNMESH_PROXY_REPLICA                   this replica's name in reports             host name
FNMESH_PROXY_CONCURRENCY               requests in flight at once; 0: unlimited   0
FNMESH_PROXY_QUEUE_DEPTH               requests waiting for a slot                100 x limit | 1000
FNMESH_PROXY_REQUEST_TIMEOUT           time a request may take in the proxy       30s
FNMESH_PROXY_DRAIN_TIMEOUT             time in-flight requests get on SIGTERM     30s
FNMESH_PROXY_STATS_URL                 where reports go (https://); empty: none   ""
FNMESH_PROXY_STATS_INTERVAL            time between reports                       1s
FNMESH_PROXY_STATS_IDENTITY            identity the stats endpoint must present   component id.
FNMESH_PROXY_POLICY_FILE               authorization policy JSON file             required
FNMESH_PROXY_GATEWAY_IDENTITY          public caller: the gateway                 component id.
FNMESH_PROXY_ACTIVATOR_IDENTITY        public caller: the activator               component id.
FNMESH_PROXY_TAP_RATE                  tap events per second at most              100
FNMESH_PROXY_TAP_BUFFER                tap events kept while waiting to be sent   1000
FNMESH_PROXY_MAX_BODY_BYTES            largest request body accepted              10485760
FNMESH_PROXY_EGRESS_SOCKET             Unix socket the runtime calls functions    "" (none)
                                       through (function-to-function calls)
FNMESH_PROXY_DESTINATIONS_URL          where the egress asks where functions are  required with
                                       (https://; served by the platform)         EGRESS_SOCKET
FNMESH_PROXY_EGRESS_OWNER              uid that owns the egress socket (the       -1 (the proxy's)
                                       sandboxed runtime's); mode stays 0600
=====================================  =========================================  ===========

"component id." is the platform component's identity in the trust domain, e.g.
``gateway.fnmesh-system.serviceaccount.identity.fnmesh.local``.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fnmesh.platform.mesh.egress.config import EgressConfig
from fnmesh.platform.mesh.identity.names import (
    TRUST_DOMAIN,
    check_identity,
    check_trust_domain,
    component_identity,
)
from fnmesh.platform.mesh.inbound.concurrency import default_queue_depth
from fnmesh.platform.model.durations import parse_duration
from fnmesh.platform.model.errors import Problems

PREFIX = "FNMESH_PROXY_"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        if self.port == 0 and self.host.startswith("/"):
            return f"unix:{self.host}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ListenConfig:
    inbound: Address
    admin: Address


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    name: str
    service_url: str
    service_identity: str
    trust_anchors_pem: str
    bootstrap_token: str  # "" when bootstrap_token_file is set
    bootstrap_token_file: Path | None

    def credential(self) -> str:
        """The bootstrap credential, read from its file when it has one (tokens rotate)."""
        if self.bootstrap_token_file is not None:
            return self.bootstrap_token_file.read_text(encoding="utf-8").strip()
        return self.bootstrap_token


@dataclass(frozen=True, slots=True)
class Labels:
    namespace: str
    function: str
    revision: str
    replica: str

    def metric_labels(self) -> dict[str, str]:
        return {"namespace": self.namespace, "function": self.function, "revision": self.revision}


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    concurrency: int
    queue_depth: int
    request_timeout: float
    drain_timeout: float
    max_body_bytes: int


@dataclass(frozen=True, slots=True)
class StatsConfig:
    url: str  # "" sends no reports
    interval: float
    server_identity: str


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    file: Path
    gateway_identity: str
    activator_identity: str

    @property
    def public_callers(self) -> frozenset[str]:
        return frozenset({self.gateway_identity, self.activator_identity})


@dataclass(frozen=True, slots=True)
class TapConfig:
    rate: float
    buffer: int


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    listen: ListenConfig
    upstream: Address
    identity: IdentityConfig
    labels: Labels
    limits: LimitsConfig
    stats: StatsConfig
    policy: PolicyConfig
    tap: TapConfig
    egress: EgressConfig | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxyConfig:
        """Read every ``FNMESH_PROXY_*`` variable; ValidationError lists all problems."""
        read = _Reader(env)
        domain = read.trust_domain("TRUST_DOMAIN")
        listen = ListenConfig(
            Address(read.text("INBOUND_HOST", "0.0.0.0"), read.port("INBOUND_PORT", 0)),
            Address(read.text("ADMIN_HOST", "127.0.0.1"), read.port("ADMIN_PORT", 0)),
        )
        upstream = read.address("UPSTREAM")
        token = read.text("BOOTSTRAP_TOKEN", "")
        token_file = read.text("BOOTSTRAP_TOKEN_FILE", "")
        if not token and not token_file:
            read.problem(
                "BOOTSTRAP_TOKEN",
                f"is required: set it (or {PREFIX}BOOTSTRAP_TOKEN_FILE) to the one-time"
                " credential the platform issued for this replica",
            )
        identity = IdentityConfig(
            name=read.identity("IDENTITY", None, domain),
            service_url=read.url("IDENTITY_URL", required=True),
            service_identity=read.identity(
                "IDENTITY_SERVER", component_identity("identity", domain), domain
            ),
            trust_anchors_pem=read.trust_anchors("TRUST_ANCHORS"),
            bootstrap_token=token,
            bootstrap_token_file=Path(token_file) if token_file else None,
        )
        labels = Labels(
            namespace=read.text("NAMESPACE", None),
            function=read.text("FUNCTION", None),
            revision=read.text("REVISION", None),
            replica=read.text("REPLICA", socket.gethostname()),
        )
        concurrency = read.integer("CONCURRENCY", 0)
        limits = LimitsConfig(
            concurrency=concurrency,
            queue_depth=read.integer("QUEUE_DEPTH", default_queue_depth(concurrency)),
            request_timeout=read.duration("REQUEST_TIMEOUT", 30.0),
            drain_timeout=read.duration("DRAIN_TIMEOUT", 30.0, allow_zero=True),
            max_body_bytes=read.integer("MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1),
        )
        stats = StatsConfig(
            url=read.url("STATS_URL", required=False),
            interval=read.duration("STATS_INTERVAL", 1.0),
            server_identity=read.identity(
                "STATS_IDENTITY", component_identity("telemetry", domain), domain
            ),
        )
        policy = PolicyConfig(
            file=Path(read.text("POLICY_FILE", None)),
            gateway_identity=read.identity(
                "GATEWAY_IDENTITY", component_identity("gateway", domain), domain
            ),
            activator_identity=read.identity(
                "ACTIVATOR_IDENTITY", component_identity("activator", domain), domain
            ),
        )
        tap = TapConfig(
            rate=read.number("TAP_RATE", 100.0), buffer=read.integer("TAP_BUFFER", 1000, minimum=1)
        )
        egress_socket = read.text("EGRESS_SOCKET", "")
        egress = None
        if egress_socket:
            egress = EgressConfig(
                socket=Path(egress_socket),
                destinations_url=read.url("DESTINATIONS_URL", required=True),
                server_identity=stats.server_identity,
                owner=read.integer("EGRESS_OWNER", -1, minimum=-1),
            )
        read.problems.raise_if_any("the replica proxy's environment")
        return cls(listen, upstream, identity, labels, limits, stats, policy, tap, egress)


class _Reader:
    """Reads variables, recording a problem (and returning a placeholder) for bad ones."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems = Problems()

    def problem(self, name: str, message: str) -> None:
        self.problems.add(PREFIX + name, message)

    def raw(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name)
        return value.strip() if value is not None and value.strip() else None

    def text(self, name: str, default: str | None) -> str:
        value = self.raw(name)
        if value is not None:
            return value
        if default is None:
            self.problem(name, "is required")
            return ""
        return default

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if value.isdigit() and int(value) >= minimum:
            return int(value)
        self.problem(name, f"must be a whole number >= {minimum}, not {value!r}")
        return default

    def port(self, name: str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if value.isdigit() and int(value) <= 65535:
            return int(value)
        self.problem(name, f"must be a port number 0-65535 (0: any free port), not {value!r}")
        return default

    def number(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if number > 0:
            return number
        self.problem(name, f"must be a positive number, not {value!r}")
        return default

    def duration(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        value = self.raw(name)
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is not None and (seconds > 0 or (allow_zero and seconds == 0)):
            return seconds
        least = ">= 0" if allow_zero else "> 0"
        self.problem(
            name,
            f"must be a duration {least} such as '30', '1.5', '500ms', '30s' or '2m',"
            f" not {value!r}",
        )
        return default

    def address(self, name: str) -> Address:
        value = self.raw(name)
        if value is None:
            self.problem(name, "is required: the function runtime's address as host:port")
            return Address("", 0)
        if value.startswith("unix:/"):
            return Address(value.removeprefix("unix:"), 0)  # a Unix socket
        host, sep, port = value.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            self.problem(
                name,
                f"must be host:port such as '127.0.0.1:8080' or unix:/path, not {value!r}",
            )
            return Address("", 0)
        return Address(host, int(port))

    def url(self, name: str, *, required: bool) -> str:
        value = self.raw(name)
        if value is None:
            if required:
                self.problem(name, "is required: an https:// URL")
            return ""
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018  # raises ValueError for a bad port
            valid = parts.scheme == "https" and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            self.problem(
                name, f"must be an https:// URL such as 'https://10.0.0.1:8443', not {value!r}"
            )
            return ""
        return value.rstrip("/") if name == "IDENTITY_URL" else value

    def identity(self, name: str, default: str | None, trust_domain: str) -> str:
        value = self.text(name, default)
        why = check_identity(value, trust_domain) if value else None
        if why:
            self.problem(name, why)
        return value

    def trust_domain(self, name: str) -> str:
        value = self.text(name, TRUST_DOMAIN)
        why = check_trust_domain(value)
        if why:
            self.problem(name, why)
            return TRUST_DOMAIN
        return value

    def trust_anchors(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            self.problem(name, "is required: the trust anchor PEM file (or its PEM text)")
            return ""
        if value.startswith(PEM_CERTIFICATE):
            return value
        try:
            text = Path(value).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            self.problem(name, f"cannot read the trust anchor file {value!r}: {error}")
            return ""
        if PEM_CERTIFICATE not in text:
            self.problem(name, f"{value!r} holds no PEM certificate ({PEM_CERTIFICATE})")
            return ""
        return text
