"""The operator's pure decisions and its configuration, as tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf
import pytest

from fnmesh.platform.model import (
    Artifact,
    Condition,
    Function,
    FunctionSpec,
    FunctionStatus,
    ObjectMeta,
    Revision,
    RevisionSpec,
    RevisionStatus,
    ScaleSpec,
)
from fnmesh.platform.model.errors import ValidationError
from fnmesh.platform.runtime.kubernetes.apply import holds
from fnmesh.platform.runtime.kubernetes.operator import ANNOTATIONS_PREFIX, configure
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
from fnmesh.platform.runtime.kubernetes.reconcile import (
    exposed_objects,
    function_objects,
    initial_replicas,
    revision_status,
    revision_status_patch,
)

Validate = Callable[[dict[str, Any]], None]
NOW = "2026-11-25T21:20:01Z"
EARLIER = "2026-11-25T21:00:00Z"
DIGEST = "sha256:" + "ab" * 32
UID = "7f1c9a52-0000-4000-8000-000000000001"
GATEWAY = "fnmesh-gateway.fnmesh-system.serviceaccount.identity.fnmesh.local"
ACTIVATOR = "fnmesh-activator.fnmesh-system.serviceaccount.identity.fnmesh.local"


def function(generation: int = 1, status: FunctionStatus | None = None, **spec: Any) -> Function:
    values: dict[str, Any] = {"handler": "main:handle", "artifact": Artifact(DIGEST), **spec}
    return Function(
        metadata=ObjectMeta(name="hello", namespace="team-a", uid=UID, generation=generation),
        spec=FunctionSpec(**values),
        status=status or FunctionStatus(),
    )


def settled(generation: int = 1, **spec: Any) -> Function:
    """A function whose current generation has its revision already."""
    return function(generation, FunctionStatus(observed_generation=generation), **spec)


def revision(
    name: str = "hello-00001", conditions: list[Condition] | None = None, **scale: Any
) -> Revision:
    return Revision(
        metadata=ObjectMeta(name=name, namespace="team-a", uid=UID),
        spec=RevisionSpec(
            function="hello",
            handler="main:handle",
            artifact=Artifact(DIGEST),
            scale=ScaleSpec(**scale),
        ),
        status=RevisionStatus(conditions=conditions or []),
    )


def ready(status: str, reason: str = "ReplicasReady") -> Condition:
    return Condition("Ready", status, reason, "", EARLIER)  # type: ignore[arg-type]


def deployment(
    replicas: int, ready_replicas: int = 0, *conditions: dict[str, str]
) -> dict[str, Any]:
    return {
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready_replicas, "conditions": list(conditions)},
    }


# -- a revision's state, read off its Deployment ---------------------------------------------

STUCK = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": "timed out",
}
QUOTA = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}
PROGRESSING = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}


@pytest.mark.parametrize(
    ("before", "observed", "status", "reason"),
    [
        (None, None, "Unknown", "Deploying"),
        (None, deployment(1), "Unknown", "Starting"),
        (None, deployment(1, 0, PROGRESSING), "Unknown", "Starting"),
        (None, deployment(2, 1), "True", "ReplicasReady"),
        (None, deployment(1, 0, STUCK), "False", "ProgressDeadlineExceeded"),
        (None, deployment(1, 0, QUOTA), "False", "FailedCreate"),
        (ready("True"), deployment(1, 1, STUCK), "True", "ReplicasReady"),  # one is serving
        (None, deployment(0), "Unknown", "ScaledToZero"),
        (ready("True"), deployment(0), "True", "ScaledToZero"),  # it served: it can again
        (ready("False", "FailedCreate"), deployment(0), "False", "FailedCreate"),
        (ready("True"), deployment(1), "Unknown", "Starting"),  # a restart after zero
    ],
)
def test_revision_status(
    before: Condition | None, observed: dict[str, Any] | None, status: str, reason: str
) -> None:
    found = revision_status(revision(conditions=[before] if before else []), observed, NOW)
    (condition,) = found.conditions
    assert (condition.status, condition.reason) == (status, reason)
    if observed is not None:
        assert found.desired_replicas == observed["spec"]["replicas"]
        assert found.ready_replicas == observed["status"]["readyReplicas"]
    if before is not None and before.status == status:
        assert condition.last_transition_time == EARLIER
    elif before is None:
        assert condition.last_transition_time == NOW


def test_a_ready_message_counts_replicas() -> None:
    found = revision_status(revision(), deployment(3, 2), NOW)
    assert found.conditions[0].message == "2 of 3 ready"


def test_the_revision_status_patch_keeps_other_writers_fields() -> None:
    status = revision_status(revision(), deployment(2, 1), NOW)
    patch = revision_status_patch(status)
    assert set(patch) == {"desiredReplicas", "readyReplicas", "conditions"}
    assert patch["conditions"][0]["lastTransitionTime"] == NOW


@pytest.mark.parametrize(
    ("scale", "replicas"),
    [
        ({}, 1),
        ({"initial": 3}, 3),
        ({"initial": 0}, 0),
        ({"initial": 0, "min": 2}, 2),
        ({"min": 4, "max": 3}, 3),
        ({"initial": 10, "max": 5}, 5),
    ],
)
def test_initial_replicas(scale: dict[str, int], replicas: int) -> None:
    assert initial_replicas(revision(**scale)) == replicas


# -- a function's objects --------------------------------------------------------------------


def test_function_objects(validate: Validate) -> None:
    objects = function_objects(function(), [GATEWAY, ACTIVATOR])
    assert [o["kind"] for o in objects] == [
        "ServiceAccount",
        "Service",
        "HTTPRouteGroup",
        "TrafficTarget",
    ]
    assert [s["name"] for s in objects[-1]["spec"]["sources"]] == [
        "fnmesh-gateway",
        "fnmesh-activator",
    ]
    for obj in objects:
        validate(obj)
        assert obj["metadata"]["ownerReferences"][0]["uid"] == UID


def test_a_function_on_an_account_it_does_not_own_makes_none() -> None:
    objects = function_objects(function(service_account="shared"), [])
    assert "ServiceAccount" not in [o["kind"] for o in objects]
    (target,) = [o for o in objects if o["kind"] == "TrafficTarget"]
    assert target["spec"]["sources"] == []
    assert target["spec"]["destination"]["name"] == "shared"


def test_what_a_function_leaves_behind() -> None:
    made = {
        (o["apiVersion"], o["kind"], o["metadata"]["name"])
        for o in function_objects(function(), [])
    }
    assert set(exposed_objects("hello")) == made


@pytest.mark.parametrize(
    ("current", "wanted", "holds_it"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": 1}, {"b": 1}, False),
        ({"s": {"x": 1, "server": 2}}, {"s": {"x": 1}}, True),
        ({"l": [{"p": 80, "proto": "TCP"}]}, {"l": [{"p": 80}]}, True),
        ({"l": [{"p": 80}, {"p": 81}]}, {"l": [{"p": 80}]}, False),
        ({"l": [1, 2]}, {"l": [2, 1]}, False),
        ({"a": None}, {"a": {}}, False),
        ({}, {}, True),
    ],
)
def test_holds(current: Any, wanted: Any, holds_it: bool) -> None:
    assert holds(current, wanted) is holds_it


# -- configuration --------------------------------------------------------------------------

CHART_ENV = {
    "FNMESH_PLATFORM_NAMESPACE": "fnmesh",
    "FNMESH_WATCH_NAMESPACES": "team-a, team-b",
    "FNMESH_TRUST_DOMAIN": "linkerd.cluster.local",
    "FNMESH_GATEWAY_DOMAIN": "fn.example.com",
    "FNMESH_GATEWAY_SERVICE_ACCOUNT": "fn-gateway",
    "FNMESH_ACTIVATOR_SERVICE_ACCOUNT": "fn-activator",
    "FNMESH_SPLIT_API_VERSION": "split.smi-spec.io/v1alpha2",
    "FNMESH_REQUEST_TIMEOUT": "2.5",
    "FNMESH_STORE": "kubernetes",  # for other components: ignored here
}


def test_the_configuration_the_chart_sets() -> None:
    config = OperatorConfig.from_env(CHART_ENV)
    assert config.watch_namespaces == ("team-a", "team-b")
    assert config.cluster.split_api_version == "split.smi-spec.io/v1alpha2"
    assert config.request_timeout == 2.5
    assert config.allowed("public") == [
        "fn-gateway.fnmesh.serviceaccount.identity.linkerd.cluster.local",
        "fn-activator.fnmesh.serviceaccount.identity.linkerd.cluster.local",
    ]
    assert config.allowed("private") == []
    assert config.function_url("team-a", "hello") == "http://hello.team-a.fn.example.com/"


def test_the_controllers_settings() -> None:
    env = {
        "FNMESH_TELEMETRY_URL": "http://fnmesh-telemetry.fnmesh:9090",
        "FNMESH_TELEMETRY_CA_FILE": "/var/run/fnmesh/ca.pem",
        "FNMESH_KEEP_REVISIONS": "3",
        "FNMESH_RETIRE_GRACE": "0",
        "FNMESH_RESYNC_INTERVAL": "15",
    }
    config = OperatorConfig.from_env(env)
    assert config.telemetry_url == "http://fnmesh-telemetry.fnmesh:9090"
    assert config.telemetry_ca_file == "/var/run/fnmesh/ca.pem"
    assert (config.keep_revisions, config.retire_grace, config.resync_interval) == (3, 0.0, 15.0)
    defaults = OperatorConfig.from_env({})
    assert defaults.telemetry_url is None  # no metrics: a canary waits at its first step
    assert (defaults.keep_revisions, defaults.retire_grace, defaults.resync_interval) == (
        10,
        5.0,
        30.0,
    )


def test_defaults() -> None:
    config = OperatorConfig.from_env({})
    assert config == OperatorConfig()
    assert config.allowed("public") == [GATEWAY, ACTIVATOR]


def test_every_bad_variable_is_named() -> None:
    env = {
        "FNMESH_GATEWAY_SERVICE_ACCOUNT": "Gateway!",
        "FNMESH_WATCH_NAMESPACES": "ok,Not_OK",
        "FNMESH_GATEWAY_DOMAIN": "https://fn.example.com",
        "FNMESH_REQUEST_TIMEOUT": "soon",
        "FNMESH_PULL_POLICY": "Sometimes",
        "FNMESH_TELEMETRY_URL": "fnmesh-telemetry:9090",
        "FNMESH_KEEP_REVISIONS": "0",
        "FNMESH_RETIRE_GRACE": "-1",
        "FNMESH_RESYNC_INTERVAL": "0",
    }
    with pytest.raises(ValidationError) as refused:
        OperatorConfig.from_env(env)
    assert sorted(e.path for e in refused.value.errors) == [
        "FNMESH_GATEWAY_DOMAIN",
        "FNMESH_GATEWAY_SERVICE_ACCOUNT",
        "FNMESH_KEEP_REVISIONS",
        "FNMESH_PULL_POLICY",
        "FNMESH_REQUEST_TIMEOUT",
        "FNMESH_RESYNC_INTERVAL",
        "FNMESH_RETIRE_GRACE",
        "FNMESH_TELEMETRY_URL",
        "FNMESH_WATCH_NAMESPACES",
    ]


def test_kopf_keeps_its_books_in_annotations() -> None:
    settings = configure(kopf.OperatorSettings())
    progress = settings.persistence.progress_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert progress.prefix == ANNOTATIONS_PREFIX
    assert settings.persistence.diffbase_storage.prefix == ANNOTATIONS_PREFIX
    assert list(settings.watching.label_selectors.values()) == ["fnmesh.dev/revision"]
