"""Traffic in the model: validation of spec.traffic, the rollout status, SMI TrafficSplits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fnmesh.platform.model import (
    Function,
    FunctionStatus,
    TrafficTarget,
    ValidationError,
    parse_manifest,
)
from fnmesh.platform.model.manifest import parse_function
from fnmesh.platform.model.resources import RolloutStatus
from fnmesh.platform.model.schema import openapi
from fnmesh.platform.model.spec_schema import SPEC_FIELDS
from fnmesh.platform.model.traffic import make_traffic_split, tags_of, weights_of

SMI = Path(__file__).resolve().parents[2] / "charts" / "fnmesh" / "crds" / "smi-split.yaml"


def problems(traffic: Any, name: str = "hello") -> dict[str, str]:
    body = {"metadata": {"name": name}, "spec": {"handler": "m:f", "traffic": traffic}}
    with pytest.raises(ValidationError) as raised:
        parse_function(body)
    return {e.path: e.message for e in raised.value.errors}


def test_weights_and_tags_are_parsed() -> None:
    manifest = parse_manifest(
        "name: hello\nhandler: m:f\ntraffic:\n"
        "  - {revision: hello-00001, percent: 90}\n"
        "  - {revision: hello-00002, percent: 10, tag: next}\n"
        "  - {revision: hello-00001, tag: old}\n"
    )
    assert manifest.spec.traffic == [
        TrafficTarget("hello-00001", 90),
        TrafficTarget("hello-00002", 10, "next"),
        TrafficTarget("hello-00001", 0, "old"),
    ]
    tags_only = parse_manifest(
        "name: hello\nhandler: m:f\ntraffic: [{revision: hello-00001, tag: a}]"
    )
    assert tags_only.spec.traffic == [TrafficTarget("hello-00001", 0, "a")]


@pytest.mark.parametrize(
    ("traffic", "field", "words"),
    [
        ("nope", "spec.traffic", "must be a list"),
        ([{"revision": "hello-00001", "percent": 60}], "spec.traffic", "add up to 60"),
        ([{"revision": "hello-00001", "percent": 101}], "spec.traffic[0].percent", "at most 100"),
        ([{"percent": 100}], "spec.traffic[0].revision", "is required"),
        ([{"revision": "other-00001", "percent": 100}], "spec.traffic[0].revision", "'hello'"),
        ([{"revision": "hello-1", "percent": 100}], "spec.traffic[0].revision", "00002"),
        ([{"revision": "hello-00001"}], "spec.traffic[0]", "needs a percent or a tag"),
        ([{"revision": "hello-00001", "tag": "Bad_Tag"}], "spec.traffic[0].tag", "DNS-1123"),
        ([{"revision": "hello-00001", "tag": "x" * 41}], "spec.traffic[0].tag", "at most 40"),
        (
            [{"revision": "hello-00001", "tag": "a"}, {"revision": "hello-00002", "tag": "a"}],
            "spec.traffic[1].tag",
            "already given",
        ),
        ([{"revision": "hello-00001", "percent": 100, "weight": 3}], "spec.traffic[0].weight", ""),
    ],
)
def test_bad_traffic_names_the_field(traffic: Any, field: str, words: str) -> None:
    found = problems(traffic)
    assert field in found, found
    assert words in found[field]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        [
            {"revision": "hello-00001", "percent": 150, "tag": "A"},
            {"revision": "x", "percent": 10},
        ]
    )
    assert {"spec.traffic[0].percent", "spec.traffic[0].tag", "spec.traffic[1].revision"} <= set(
        found
    )


def test_the_schema_renders_traffic_as_an_array() -> None:
    rendered = openapi(SPEC_FIELDS)["properties"]["traffic"]
    assert rendered["type"] == "array"
    assert rendered["items"]["required"] == ["revision"]
    assert rendered["items"]["properties"]["percent"]["maximum"] == 100


def test_the_rollout_status_round_trips() -> None:
    status = FunctionStatus(
        traffic=[TrafficTarget("hello-00001", 100), TrafficTarget("hello-00002", 0, "next")],
        rollout=RolloutStatus(
            canary="hello-00002",
            stable="hello-00001",
            weight=0,
            failed_checks=3,
            last_step=1_800_000_000.5,
            phase="RolledBack",
            reason="ChecksFailed",
            message="why",
        ),
    )
    function = parse_manifest("name: hello\nhandler: m:f\n").function().with_status(status)
    body = function.to_dict()
    assert body["status"]["rollout"]["failedChecks"] == 3
    assert body["status"]["traffic"][1] == {"revision": "hello-00002", "percent": 0, "tag": "next"}
    assert Function.from_dict(body) == function


def split_schema() -> dict[str, Any]:
    crd = yaml.safe_load(SMI.read_text())
    (v1alpha4,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha4"]
    schema: dict[str, Any] = v1alpha4["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    "traffic",
    [
        [TrafficTarget("hello-00001", 100)],
        [TrafficTarget("hello-00001", 90), TrafficTarget("hello-00002", 10, "next")],
        [TrafficTarget("hello-00001", 100), TrafficTarget("hello-00002", 0, "tagged-only")],
        [TrafficTarget("hello-00001", 50), TrafficTarget("hello-00001", 50)],
    ],
)
def test_traffic_splits_validate_against_the_smi_schema(traffic: list[TrafficTarget]) -> None:
    function = parse_manifest("name: hello\nhandler: m:f\n").function()
    split = make_traffic_split(function, traffic)
    jsonschema.validate(split, split_schema())
    assert split["apiVersion"] == "split.smi-spec.io/v1alpha4" and split["kind"] == "TrafficSplit"
    assert split["spec"]["service"] == "hello"
    weights = {b["service"]: b["weight"] for b in split["spec"]["backends"]}
    assert weights == weights_of(traffic) and 0 not in weights.values()
    assert sum(weights.values()) == 100


def test_the_smi_schema_catches_a_broken_split() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"spec": {"service": "x", "backends": [{"service": "a"}]}}, split_schema()
        )


def test_tags_of() -> None:
    traffic = [TrafficTarget("a", 100), TrafficTarget("b", 0, "next"), TrafficTarget("a", 0, "x")]
    assert tags_of(traffic) == {"next": "b", "x": "a"}
