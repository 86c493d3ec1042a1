"""The operator's pure decisions and its configuration, as tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf
import pytest

from fnmesh.platform.controller.plan import plan
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
    TrafficTarget,
)
from fnmesh.platform.model.errors import ValidationError
from fnmesh.platform.runtime.kubernetes import ClusterConfig
from fnmesh.platform.runtime.kubernetes.apply import holds
from fnmesh.platform.runtime.kubernetes.operator import ANNOTATIONS_PREFIX, configure
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
from fnmesh.platform.runtime.kubernetes.reconcile import (
    function_objects,
    initial_replicas,
    new_revision,
    owned_by_function,
    retired,
    revision_status,
    revision_status_patch,
    status_patch,
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


def test_a_new_revision_is_owned_by_its_function() -> None:
    decided = plan(function(), [], url=None, now=NOW)
    body = new_revision(function(), decided)
    assert body is not None
    assert body["metadata"]["name"] == "hello-00001"
    assert body["metadata"]["labels"] == {"fnmesh.dev/function": "hello"}
    assert body["metadata"]["ownerReferences"][0]["uid"] == UID
    assert "status" not in body
    assert new_revision(settled(), plan(settled(), [revision()], url=None, now=NOW)) is None


def test_function_objects_without_traffic_have_no_split(validate: Validate) -> None:
    fn = function()
    objects = function_objects(fn, plan(fn, [], url=None, now=NOW), ClusterConfig(), [GATEWAY])
    assert [o["kind"] for o in objects] == [
        "ServiceAccount",
        "Service",
        "HTTPRouteGroup",
        "TrafficTarget",
    ]
    for obj in objects:
        validate(obj)


def test_function_objects_split_by_the_plans_traffic(validate: Validate) -> None:
    serving = revision(conditions=[ready("True")])
    fn = settled(service_account="shared")
    cfg = ClusterConfig(split_api_version="split.smi-spec.io/v1alpha2")
    decided = plan(fn, [serving], url=None, now=NOW)
    objects = {o["kind"]: o for o in function_objects(fn, decided, cfg, [GATEWAY, ACTIVATOR])}
    assert "ServiceAccount" not in objects  # the function runs as an account it does not own
    split = objects["TrafficSplit"]
    assert split["apiVersion"] == "split.smi-spec.io/v1alpha2"
    assert split["spec"]["backends"] == [{"service": "hello-00001", "weight": 100}]
    assert [s["name"] for s in objects["TrafficTarget"]["spec"]["sources"]] == [
        "fnmesh-gateway",
        "fnmesh-activator",
    ]


def test_zero_weights_are_left_out_of_the_split() -> None:
    fn = function()
    decided = plan(fn, [revision("hello-00001"), revision("hello-00002")], url=None, now=NOW)
    decided = type(decided)(
        traffic=[TrafficTarget("hello-00001", 0), TrafficTarget("hello-00002", 100)]
    )
    (split,) = [
        o for o in function_objects(fn, decided, ClusterConfig(), []) if o["kind"] == "TrafficSplit"
    ]
    assert split["spec"]["backends"] == [{"service": "hello-00002", "weight": 100}]


def test_what_a_function_owns() -> None:
    owned = owned_by_function(function(), ClusterConfig())
    assert owned == [
        ("v1", "ServiceAccount", "hello"),
        ("v1", "Service", "hello"),
        ("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup", "hello"),
        ("access.smi-spec.io/v1alpha3", "TrafficTarget", "hello"),
        ("split.smi-spec.io/v1alpha4", "TrafficSplit", "hello"),
    ]
    assert ("v1", "ServiceAccount", "hello") not in owned_by_function(
        function(service_account="shared"), ClusterConfig()
    )


def test_retired_revisions_are_the_plans_inactive_ones() -> None:
    old, new = revision("hello-00001", [ready("True")]), revision("hello-00002", [ready("True")])
    decided = plan(settled(2), [old, new], url=None, now=NOW)
    assert retired(decided) == ["hello-00001"]
    starting = plan(settled(), [revision("hello-00001")], url=None, now=NOW)
    assert retired(starting) == []


def test_the_function_status_patch_clears_what_the_plan_dropped() -> None:
    status = FunctionStatus(observed_generation=2, latest_created_revision="hello-00002")
    patch = status_patch(status)
    assert patch["observedGeneration"] == 2
    assert patch["latestReadyRevision"] is None  # removed by the merge patch
    assert patch["traffic"] is None and patch["url"] is None
    assert patch["revisionCount"] == 0


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
    }
    with pytest.raises(ValidationError) as refused:
        OperatorConfig.from_env(env)
    assert sorted(e.path for e in refused.value.errors) == [
        "FNMESH_GATEWAY_DOMAIN",
        "FNMESH_GATEWAY_SERVICE_ACCOUNT",
        "FNMESH_PULL_POLICY",
        "FNMESH_REQUEST_TIMEOUT",
        "FNMESH_WATCH_NAMESPACES",
    ]


def test_kopf_keeps_its_books_in_annotations() -> None:
    settings = configure(kopf.OperatorSettings())
    progress = settings.persistence.progress_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert progress.prefix == ANNOTATIONS_PREFIX
    assert settings.persistence.diffbase_storage.prefix == ANNOTATIONS_PREFIX
    assert list(settings.watching.label_selectors.values()) == ["fnmesh.dev/revision"]
