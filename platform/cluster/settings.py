"""What a component knows about the cluster: the environment the chart sets, read once.

Every ``FNMESH_*`` variable is read, every problem is collected with the variable's name
and what it accepts, and only then does ``from_env`` fail (``ValidationError``) -- or
return frozen settings. The variables (see charts/fnmesh/README.md, "Component
environment"):

====================================  ============================================  ===============
variable                              meaning                                       default
====================================  ============================================  ===============
FNMESH_STORE                          where resources live; must be ``kubernetes``  kubernetes
FNMESH_PLATFORM_NAMESPACE             the chart's namespace (tokens live there)     fnmesh-system
FNMESH_WATCH_NAMESPACES               namespaces of functions, comma-separated      "" (all)
FNMESH_SPLIT_API_VERSION              the TrafficSplit version the cluster serves   .../v1alpha4
FNMESH_GATEWAY_DOMAIN                 host routing: ``<fn>.<ns>.<domain>``          fn.localhost
FNMESH_TRUST_DOMAIN                   suffix of every workload identity             fnmesh.local
FNMESH_TRUST_ANCHORS                  PEM the mesh's certificates chain up to       "" (required by
                                                                                    components)
FNMESH_IDENTITY_TOKEN_FILE            the pod's projected identity token            /var/run/...
FNMESH_API_URL                        the API's Service (http://)                   fnmesh-api...
FNMESH_ARTIFACT_URL                   the artifact service (https:// only)          fnmesh-api...
FNMESH_IDENTITY_URL                   the identity endpoint (https://)              fnmesh-api...
FNMESH_ACTIVATOR_URL                  the activator's admission listener (https://) fnmesh-activ...
FNMESH_AUTOSCALER_URL                 the autoscaler's control listener (https://)  fnmesh-autos...
FNMESH_TELEMETRY_URL                  the telemetry hub: reports in, reads out      fnmesh-telem...
FNMESH_LISTEN_HOST / _PORT            where this component listens                  0.0.0.0 / own
FNMESH_REQUEST_TIMEOUT                seconds one Kubernetes API call may take      10
FNMESH_SERVICE_HOSTS                  hosts file naming Services' addresses, for a  "" (DNS)
                                      machine without the cluster's DNS
====================================  ============================================  ===============

The API reads more (``ApiSettings``): ``FNMESH_IDENTITY_PORT``, ``FNMESH_ARTIFACT_PORT``,
``FNMESH_IDENTITY_AUDIENCE``,
``FNMESH_DATA_DIR``, ``FNMESH_API_TOKEN``, ``FNMESH_CA_DIR`` and the platform's service
accounts ``FNMESH_{GATEWAY,ACTIVATOR,AUTOSCALER,TELEMETRY,OPERATOR}_SERVICE_ACCOUNT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fnmesh.platform.mesh.identity.names import TRUST_DOMAIN, check_trust_domain
from fnmesh.platform.model.errors import Problems
from fnmesh.platform.model.names import MAX_NAMESPACE_NAME, check_name
from fnmesh.platform.runtime.kubernetes.builders import IDENTITY_AUDIENCE, TOKEN_FILE
from fnmesh.platform.runtime.kubernetes.config import SPLIT_API_VERSIONS

PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
API_PORT = 8081
IDENTITY_PORT = 8443
ARTIFACT_PORT = 8444  # HTTPS: replicas present their identity token there
GATEWAY_PORT = 8080
ACTIVATOR_PORT = 8012
AUTOSCALER_PORT = 8090
TELEMETRY_PORT = 8091


@dataclass(frozen=True, slots=True)
class Addresses:
    """The platform's Services, as components reach each other."""

    api_url: str = f"http://fnmesh-api.fnmesh-system.svc:{API_PORT}"
    artifact_url: str = f"https://fnmesh-api.fnmesh-system.svc:{ARTIFACT_PORT}"
    identity_url: str = f"https://fnmesh-api.fnmesh-system.svc:{IDENTITY_PORT}"
    activator_url: str = f"https://fnmesh-activator.fnmesh-system.svc:{ACTIVATOR_PORT}"
    autoscaler_url: str = f"https://fnmesh-autoscaler.fnmesh-system.svc:{AUTOSCALER_PORT}"
    telemetry_url: str = f"https://fnmesh-telemetry.fnmesh-system.svc:{TELEMETRY_PORT}"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """What every component reads; ``listen_port`` defaults to the component's own."""

    platform_namespace: str = "fnmesh-system"
    watch_namespaces: tuple[str, ...] = ()
    split_api_version: str = "split.smi-spec.io/v1alpha4"
    gateway_domain: str = "fn.localhost"
    trust_domain: str = TRUST_DOMAIN
    trust_anchors: str = ""
    token_file: Path = Path(TOKEN_FILE)
    addresses: Addresses = field(default_factory=Addresses)
    listen_host: str = "0.0.0.0"
    listen_port: int = API_PORT
    request_timeout: float = 10.0
    service_hosts: Path | None = None  # see service_hosts.py; None: the cluster's DNS

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, port: int, anchors_required: bool = True
    ) -> ClusterSettings:
        """Read the common variables; ValidationError names every bad one."""
        read = Reader(env)
        settings = read.cluster(port, anchors_required=anchors_required)
        read.problems.raise_if_any("the component's environment")
        return settings


@dataclass(frozen=True, slots=True)
class Accounts:
    """The chart's service accounts of the platform's components (platform namespace)."""

    gateway: str = "fnmesh-gateway"
    activator: str = "fnmesh-activator"
    autoscaler: str = "fnmesh-autoscaler"
    telemetry: str = "fnmesh-telemetry"
    operator: str = "fnmesh-operator"

    def by_component(self) -> dict[str, str]:
        return {
            "gateway": self.gateway,
            "activator": self.activator,
            "autoscaler": self.autoscaler,
            "telemetry": self.telemetry,
            "operator": self.operator,
        }


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The API process: the common settings plus storage, its token and the identity CA."""

    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    identity_port: int = IDENTITY_PORT
    artifact_port: int = ARTIFACT_PORT
    audience: str = IDENTITY_AUDIENCE
    data_dir: Path = Path("/var/lib/fnmesh")
    api_token: str = ""
    ca_dir: Path = Path("/var/run/secrets/fnmesh.dev/ca")
    accounts: Accounts = field(default_factory=Accounts)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiSettings:
        read = Reader(env)
        cluster = read.cluster(API_PORT, anchors_required=False)
        accounts = Accounts(
            gateway=read.name("GATEWAY_SERVICE_ACCOUNT", "fnmesh-gateway", "service account"),
            activator=read.name("ACTIVATOR_SERVICE_ACCOUNT", "fnmesh-activator", "service account"),
            autoscaler=read.name(
                "AUTOSCALER_SERVICE_ACCOUNT", "fnmesh-autoscaler", "service account"
            ),
            telemetry=read.name("TELEMETRY_SERVICE_ACCOUNT", "fnmesh-telemetry", "service account"),
            operator=read.name("OPERATOR_SERVICE_ACCOUNT", "fnmesh-operator", "service account"),
        )
        token = read.text("API_TOKEN", "")
        if len(token) < 16:
            read.problem(
                "API_TOKEN",
                "is required: the admin token (16 characters or more; the chart takes it "
                "from the Secret <release>-admin-token)",
            )
        settings = cls(
            cluster=cluster,
            identity_port=read.port("IDENTITY_PORT", IDENTITY_PORT),
            artifact_port=read.port("ARTIFACT_PORT", ARTIFACT_PORT),
            audience=read.text("IDENTITY_AUDIENCE", IDENTITY_AUDIENCE),
            data_dir=read.path("DATA_DIR", "/var/lib/fnmesh"),
            api_token=token,
            ca_dir=read.path("CA_DIR", "/var/run/secrets/fnmesh.dev/ca"),
            accounts=accounts,
        )
        read.problems.raise_if_any("the API's environment")
        return settings


class Reader:
    """Reads ``FNMESH_<NAME>`` variables, recording a problem for each bad one."""

    prefix = "FNMESH_"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems = Problems()

    def problem(self, name: str, message: str) -> None:
        self.problems.add(self.prefix + name, message)

    def text(self, name: str, default: str) -> str:
        value = self.env.get(self.prefix + name, "").strip()
        return value or default

    def name(self, name: str, default: str, what: str) -> str:
        value = self.text(name, default)
        why = check_name(value, what=what, limit=MAX_NAMESPACE_NAME)
        if why:
            self.problem(name, why)
        return value

    def path(self, name: str, default: str) -> Path:
        value = self.text(name, default)
        if not value.startswith("/"):
            self.problem(name, f"must be an absolute path, not {value!r}")
        return Path(value)

    def optional_path(self, name: str) -> Path | None:
        """An absolute path, or None when the variable is unset or empty."""
        return self.path(name, "") if self.text(name, "") else None

    def port(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        if raw.isdigit() and 0 <= int(raw) <= 65535:
            return int(raw)
        self.problem(name, f"must be a port number 0-65535 (0: any free port), not {raw!r}")
        return default

    def seconds(self, name: str, default: float) -> float:
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if 0 < value <= 300:
            return value
        self.problem(name, f"must be seconds above 0, at most 300, not {raw!r}")
        return default

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.text(name, default).rstrip("/")
        parts = urlsplit(value)
        try:
            valid = parts.scheme in schemes and bool(parts.hostname) and parts.port is not None
        except ValueError:
            valid = False
        if not valid or parts.path or parts.query:
            example = f"{schemes[0]}://fnmesh-api.fnmesh-system.svc:8081"
            self.problem(
                name,
                f"must be {' or '.join(s + '://' for s in schemes)} host:port without a path "
                f"(e.g. {example!r}), not {value!r}",
            )
        return value

    def cluster(self, port: int, *, anchors_required: bool) -> ClusterSettings:
        store = self.text("STORE", "kubernetes")
        if store != "kubernetes":
            self.problem("STORE", f"must be 'kubernetes' for this entry point, not {store!r}")
        namespace = self.name("PLATFORM_NAMESPACE", "fnmesh-system", "namespace")
        namespaces = tuple(
            n.strip() for n in self.text("WATCH_NAMESPACES", "").split(",") if n.strip()
        )
        for item in namespaces:
            why = check_name(item, what="namespace", limit=MAX_NAMESPACE_NAME)
            if why:
                self.problem("WATCH_NAMESPACES", why)
        split = self.text("SPLIT_API_VERSION", "split.smi-spec.io/v1alpha4")
        if split not in SPLIT_API_VERSIONS:
            self.problem(
                "SPLIT_API_VERSION",
                f"must be one of {', '.join(SPLIT_API_VERSIONS)}, not {split!r}",
            )
        domain = self.text("GATEWAY_DOMAIN", "fn.localhost")
        if check_trust_domain(domain):  # the same DNS-name rule
            self.problem(
                "GATEWAY_DOMAIN", f"must be a DNS name such as 'fn.example.com', not {domain!r}"
            )
        trust_domain = self.text("TRUST_DOMAIN", TRUST_DOMAIN)
        why = check_trust_domain(trust_domain)
        if why:
            self.problem("TRUST_DOMAIN", why)
        anchors = self.env.get(self.prefix + "TRUST_ANCHORS", "").strip()
        if anchors and PEM_CERTIFICATE not in anchors:
            self.problem("TRUST_ANCHORS", f"must be PEM certificates ({PEM_CERTIFICATE})")
        elif not anchors and anchors_required:
            self.problem(
                "TRUST_ANCHORS",
                "is required: the mesh's trust anchor PEM (the chart takes it from the "
                "identity Secret, key ca.crt)",
            )
        defaults = Addresses()
        addresses = Addresses(
            api_url=self.url("API_URL", defaults.api_url, ("http", "https")),
            artifact_url=self.url("ARTIFACT_URL", defaults.artifact_url, ("https",)),
            identity_url=self.url("IDENTITY_URL", defaults.identity_url, ("https",)),
            activator_url=self.url("ACTIVATOR_URL", defaults.activator_url, ("https",)),
            autoscaler_url=self.url("AUTOSCALER_URL", defaults.autoscaler_url, ("https",)),
            telemetry_url=self.url("TELEMETRY_URL", defaults.telemetry_url, ("https",)),
        )
        return ClusterSettings(
            platform_namespace=namespace,
            watch_namespaces=namespaces,
            split_api_version=split,
            gateway_domain=domain,
            trust_domain=trust_domain if not why else TRUST_DOMAIN,
            trust_anchors=anchors,
            token_file=self.path("IDENTITY_TOKEN_FILE", TOKEN_FILE),
            addresses=addresses,
            listen_host=self.text("LISTEN_HOST", "0.0.0.0"),
            listen_port=self.port("LISTEN_PORT", port),
            request_timeout=self.seconds("REQUEST_TIMEOUT", 10.0),
            service_hosts=self.optional_path("SERVICE_HOSTS"),
        )


def host_port(url: str) -> tuple[str, int]:
    """The host and port of a URL that ``Reader.url`` accepted."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port
