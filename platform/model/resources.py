"""The platform's resources, shaped like Kubernetes objects.

``Function`` is what a developer declares (from ``fn.yaml`` or a resource file);
``Revision`` is an immutable snapshot of a function's code and configuration, stamped by
the controller on every change (``<fn>-00001``, ``-00002``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fnmesh.platform.model.quantities import millicores
from fnmesh.platform.model.wire import from_wire, to_wire

GROUP = "fnmesh.dev"
API_VERSION = f"{GROUP}/v1alpha1"
Visibility = Literal["public", "private"]
ScaleMetric = Literal["concurrency", "rps"]
RolloutStrategy = Literal["immediate", "canary"]
RolloutPhase = Literal["Progressing", "Promoted", "RolledBack"]

LABEL_FUNCTION = "fnmesh.dev/function"
LABEL_REVISION = "fnmesh.dev/revision"
LABEL_COMMIT = "fnmesh.dev/commit"  # the git commit a revision was built from
LABEL_PREVIEW = "fnmesh.dev/preview"  # the tag of a branch preview revision


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    name: str
    namespace: str = "default"
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScaleSpec:
    """Autoscaling settings; None means the platform default."""

    min: int = 0
    max: int = 0  # 0: no upper bound but the platform's
    initial: int | None = None
    target: float | None = None
    metric: ScaleMetric = "concurrency"
    target_utilization: float | None = None
    activation_scale: int | None = None
    stable_window: float | None = None
    panic_window_percentage: float | None = None
    panic_threshold_percentage: float | None = None
    scale_down_delay: float | None = None
    scale_to_zero_grace_period: float | None = None
    target_burst_capacity: float | None = None


@dataclass(frozen=True, slots=True)
class ResourcesSpec:
    """Limits of a replica's runtime; None means the platform's default.

    ``memory`` in bytes, ``cpu`` in cores (0.5 = 500m), ``pids`` a count of processes and
    threads: numbers, so that a stored object reads back the same (see ``quantities``).
    """

    memory: int | None = None
    cpu: float | None = None
    pids: int | None = None

    @property
    def cpu_millis(self) -> int | None:
        return None if self.cpu is None else millicores(self.cpu)


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    strategy: RolloutStrategy = "immediate"
    step_weight: int = 10
    max_weight: int = 50
    interval: float = 30.0
    threshold: int = 3
    min_success_rate: float = 99.0
    max_latency_p99: float = 0.5
    min_requests: int = 20


@dataclass(frozen=True, slots=True)
class Artifact:
    digest: str
    environment: str | None = None  # key of the cached dependency environment, if any
    build: str | None = None
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class TrafficTarget:
    """A revision's share of a function's requests, and the tag that reaches it directly.

    In ``Function.spec.traffic`` the entries pin traffic by hand; in
    ``Function.status.traffic`` they say where requests go now.
    """

    revision: str
    percent: int = 0
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    handler: str
    runtime: str = "python"
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    concurrency: int = 0
    visibility: Visibility = "public"
    service_account: str | None = None
    scale: ScaleSpec = field(default_factory=ScaleSpec)
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    rollout: RolloutSpec = field(default_factory=RolloutSpec)
    artifact: Artifact | None = None
    traffic: list[TrafficTarget] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # names only, never values
    secret_env: dict[str, str] = field(default_factory=dict)  # VAR -> "<secret>/<key>"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """Where the rollout of a function's newest revision stands (written by the controller).

    ``canary`` is the newest revision, ``stable`` the one it replaces; ``weight`` is the
    canary's share while ``Progressing``. ``lastStep`` is in seconds since the epoch.
    ``command`` names the last rollback or promote request that was carried out.
    """

    canary: str
    stable: str | None = None
    weight: int = 0
    failed_checks: int = 0
    last_step: float = 0.0
    phase: RolloutPhase = "Progressing"
    reason: str | None = None
    message: str | None = None
    command: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionStatus:
    observed_generation: int | None = None
    latest_created_revision: str | None = None
    latest_ready_revision: str | None = None
    revision_count: int = 0
    url: str | None = None
    traffic: list[TrafficTarget] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    rollout: RolloutStatus | None = None


@dataclass(frozen=True, slots=True)
class Function:
    metadata: ObjectMeta
    spec: FunctionSpec
    status: FunctionStatus = field(default_factory=FunctionStatus)
    kind: str = "Function"
    api_version: str = API_VERSION

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    def to_dict(self) -> dict[str, Any]:
        return _resource_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Function:
        return from_wire(cls, data)

    def with_status(self, status: FunctionStatus) -> Function:
        return replace(self, status=status)


@dataclass(frozen=True, slots=True)
class RevisionSpec:
    """A function's code and configuration, frozen when the revision is stamped."""

    function: str
    handler: str
    artifact: Artifact
    runtime: str = "python"
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    concurrency: int = 0
    visibility: Visibility = "public"
    service_account: str | None = None
    scale: ScaleSpec = field(default_factory=ScaleSpec)
    secrets: list[str] = field(default_factory=list)
    secret_env: dict[str, str] = field(default_factory=dict)
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    name: str
    address: str | None = None
    ready: bool = False
    pid: int | None = None
    started_at: str | None = None
    restarts: int = 0
    metrics_url: str | None = None


@dataclass(frozen=True, slots=True)
class RevisionStatus:
    desired_replicas: int = 0
    ready_replicas: int = 0
    replicas: list[ReplicaStatus] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    last_cold_start_seconds: float | None = None
    # the autoscaler's last decision, as the runtime was told it (None: not autoscaled)
    panic: bool | None = None
    scaling_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Revision:
    metadata: ObjectMeta
    spec: RevisionSpec
    status: RevisionStatus = field(default_factory=RevisionStatus)
    kind: str = "Revision"
    api_version: str = API_VERSION

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    def to_dict(self) -> dict[str, Any]:
        return _resource_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Revision:
        return from_wire(cls, data)

    def with_status(self, status: RevisionStatus) -> Revision:
        return replace(self, status=status)


def _resource_dict(resource: Function | Revision) -> dict[str, Any]:
    body: dict[str, Any] = to_wire(resource)
    ordered = {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind")}
    ordered.update(body)
    ordered.setdefault("status", {})
    return ordered


def revision_spec_for(function: Function) -> RevisionSpec:
    """The configuration a new revision of ``function`` freezes."""
    spec = function.spec
    if spec.artifact is None:
        raise ValueError(f"function {function.name!r} has no artifact yet: deploy its source first")
    return RevisionSpec(
        function=function.name,
        handler=spec.handler,
        artifact=spec.artifact,
        runtime=spec.runtime,
        env=dict(spec.env),
        timeout=spec.timeout,
        concurrency=spec.concurrency,
        visibility=spec.visibility,
        service_account=spec.service_account or function.name,
        scale=spec.scale,
        secrets=list(spec.secrets),
        secret_env=dict(spec.secret_env),
        resources=spec.resources,
    )


def condition(conditions: list[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Replace the condition of ``new.type``; keep its transition time if status is unchanged."""
    old = condition(conditions, new.type)
    if old is not None and old.status == new.status:
        new = replace(new, last_transition_time=old.last_transition_time)
    return [c for c in conditions if c.type != new.type] + [new]
