"""The fnmesh.dev CRDs: built from the model's schema, shipped by the chart unchanged."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from fnmesh.platform.model import (
    Artifact,
    Condition,
    Function,
    FunctionSpec,
    FunctionStatus,
    ObjectMeta,
    ReplicaStatus,
    Revision,
    RevisionStatus,
    RolloutSpec,
    ScaleSpec,
    TrafficTarget,
)
from fnmesh.platform.model.resources import revision_spec_for
from fnmesh.platform.model.spec_schema import SPEC_FIELDS
from fnmesh.platform.runtime.kubernetes.crds import (
    REVISION_FIELDS,
    crds,
    function_crd,
    render,
    revision_crd,
)

Validate = Callable[[dict[str, Any]], None]
ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "charts" / "fnmesh" / "crds" / "fnmesh.yaml"
SMI_COPIES = {
    "smi-split.yaml": "trafficsplits.split.smi-spec.io",
    "smi-access.yaml": "traffictargets.access.smi-spec.io",
    "smi-httproutegroup.yaml": "httproutegroups.specs.smi-spec.io",
}


def test_the_committed_crds_are_the_builders_output() -> None:
    assert COMMITTED.read_text() == render(), (
        "charts/fnmesh/crds/fnmesh.yaml is stale: run "
        "`python -m fnmesh.platform.runtime.kubernetes.crds > charts/fnmesh/crds/fnmesh.yaml`"
    )


def test_the_module_writes_the_crds_to_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "fnmesh.platform.runtime.kubernetes.crds"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == render()
    assert done.stderr == ""


@pytest.mark.parametrize(("copy", "name"), sorted(SMI_COPIES.items()))
def test_the_chart_ships_the_smi_crds(copy: str, name: str) -> None:
    shipped = ROOT / "charts" / "fnmesh" / "crds" / copy
    documents = [d for d in yaml.safe_load_all(shipped.read_text()) if d]
    assert [d["metadata"]["name"] for d in documents] == [name]
    kubernetes_validate.validate(documents[0], "1.33", strict=True)


@pytest.mark.parametrize("crd", crds(), ids=lambda crd: crd["metadata"]["name"])
def test_crds_are_valid_kubernetes_objects(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.33", strict=True)
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    # functions and revisions have a status the platform writes; tokens have none
    has_status = crd["spec"]["names"]["kind"] != "Token"
    assert version.get("subresources") == ({"status": {}} if has_status else None)
    assert crd["spec"]["scope"] == "Namespaced"


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("crd", crds(), ids=lambda crd: crd["metadata"]["name"])
def test_schemas_are_structural(crd: dict[str, Any]) -> None:
    """Kubernetes refuses a CRD whose schema is not structural: every node typed, no
    properties beside additionalProperties, nothing but 'type' under metadata."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in nodes(schema):
        assert node.get("type") in ("object", "array", "string", "integer", "number", "boolean"), (
            f"{path or '<root>'} has no type"
        )
        assert not ("properties" in node and "additionalProperties" in node), path
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict), f"{path}: an array needs items"
    assert schema["properties"]["metadata"] == {"type": "object"}


def test_spec_schemas_follow_the_model() -> None:
    function_spec = function_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert list(function_spec["properties"]["spec"]["properties"]) == list(SPEC_FIELDS)
    assert function_spec["properties"]["spec"]["required"] == ["handler"]
    revision_spec = revision_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert list(revision_spec["properties"]["spec"]["properties"]) == [
        "function",
        "handler",
        "artifact",
        "runtime",
        "env",
        "timeout",
        "concurrency",
        "visibility",
        "serviceAccount",
        "scale",
        "secrets",
        "secretEnv",
        "resources",
    ]
    assert revision_spec["properties"]["spec"]["required"] == ["function", "handler", "artifact"]
    assert list(REVISION_FIELDS) == list(revision_spec["properties"]["spec"]["properties"])
    scale = function_spec["properties"]["spec"]["properties"]["scale"]["properties"]
    assert scale["min"] == {
        "type": "integer",
        "minimum": 0,
        "description": scale["min"]["description"],
    }


def columns(crd: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    return [(c["name"], c["type"], c["jsonPath"]) for c in found]


def test_printer_columns() -> None:
    ready = ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status')
    age = ("Age", "date", ".metadata.creationTimestamp")
    assert columns(function_crd()) == [
        ready,
        ("Latest", "string", ".status.latestReadyRevision"),
        ("URL", "string", ".status.url"),
        age,
    ]
    assert columns(revision_crd()) == [
        ("Function", "string", ".spec.function"),
        ready,
        ("Replicas", "integer", ".status.readyReplicas"),
        age,
    ]


# -- example objects against the CRDs (refusing anything the server would prune) ---------

DIGEST = "sha256:" + "0f" * 32


def full_function() -> Function:
    spec = FunctionSpec(
        handler="main:handle",
        runtime="python3.11",
        env={"GREETING": "hi"},
        timeout=2.5,
        concurrency=8,
        visibility="private",
        service_account="billing",
        scale=ScaleSpec(
            min=1,
            max=5,
            initial=2,
            target=10.0,
            metric="rps",
            target_utilization=0.7,
            activation_scale=2,
            stable_window=60.0,
            panic_window_percentage=10.0,
            panic_threshold_percentage=200.0,
            scale_down_delay=0.0,
            scale_to_zero_grace_period=30.0,
            target_burst_capacity=-1.0,
        ),
        rollout=RolloutSpec(strategy="canary", step_weight=20, max_weight=60, interval=10.0),
        artifact=Artifact(digest=DIGEST, environment="env-1", build="b-1", commit="abc123"),
    )
    status = FunctionStatus(
        observed_generation=2,
        latest_created_revision="hello-00002",
        latest_ready_revision="hello-00002",
        revision_count=2,
        url="http://gateway.example/fn/hello/",
        traffic=[TrafficTarget("hello-00001", 90), TrafficTarget("hello-00002", 10, tag="next")],
        conditions=[Condition("Ready", "True", "RevisionReady", "ok", "2026-11-25T21:20:01Z")],
    )
    return Function(
        metadata=ObjectMeta(name="hello", namespace="team-a", uid="u", generation=2),
        spec=spec,
        status=status,
    )


def full_revision() -> Revision:
    status = RevisionStatus(
        desired_replicas=2,
        ready_replicas=1,
        replicas=[
            ReplicaStatus(
                name="hello-00002-x7k2p",
                address="10.0.0.7:4143",
                ready=True,
                started_at="2026-11-25T21:20:01Z",
                restarts=1,
                metrics_url="http://10.0.0.7:4191/metrics",
            )
        ],
        conditions=[Condition("Ready", "False", "Starting", "1 of 2 replicas ready")],
        last_cold_start_seconds=0.4,
    )
    return Revision(
        metadata=ObjectMeta(
            name="hello-00002", namespace="team-a", labels={"fnmesh.dev/function": "hello"}
        ),
        spec=revision_spec_for(full_function()),
        status=status,
    )


def test_a_full_function_is_accepted_without_losing_a_field(validate: Validate) -> None:
    body = full_function().to_dict()
    validate(body)
    assert body["spec"]["rollout"]["strategy"] == "canary"  # the example really is full


def test_a_full_revision_is_accepted_without_losing_a_field(validate: Validate) -> None:
    body = full_revision().to_dict()
    validate(body)
    assert body["spec"]["function"] == "hello"


def test_a_minimal_function_is_accepted(validate: Validate) -> None:
    validate(
        yaml.safe_load("""
apiVersion: fnmesh.dev/v1alpha1
kind: Function
metadata: {name: hello, namespace: default}
spec: {handler: main:handle}
""")
    )


def function_body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {"handler": "main:handle", **spec},
    }


@pytest.mark.parametrize(
    "body",
    [
        function_body(concurrency=-1),
        function_body(visibility="internal"),
        function_body(timeout="30s"),  # the cluster stores durations in seconds
        function_body(scale={"min": 0, "metric": "memory"}),
        function_body(artifact={"build": "b-1"}),  # the digest is required
        function_body(colour="blue"),  # would be pruned: refuse it instead
        {
            "apiVersion": "fnmesh.dev/v1alpha1",
            "kind": "Function",
            "metadata": {"name": "x"},
            "spec": {"runtime": "python"},
        },  # no handler
        {**full_revision().to_dict(), "spec": {"function": "hello", "handler": "main:handle"}},
        {**full_function().to_dict(), "status": {"traffic": [{"revision": "a", "percent": 101}]}},
    ],
)
def test_invalid_objects_are_refused(body: dict[str, Any], validate: Validate) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(body)


def test_unknown_status_fields_are_kept() -> None:
    """Status may grow before the CRD does: it preserves what it does not declare."""
    for crd in crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
        assert "x-kubernetes-preserve-unknown-fields" not in schema["properties"]["spec"]
