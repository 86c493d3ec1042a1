import pytest

from fnmesh.platform.model import ValidationError, parse_manifest
from fnmesh.platform.model.manifest import parse_function
from fnmesh.platform.model.schema import openapi
from fnmesh.platform.model.spec_schema import SPEC_FIELDS


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_manifest(text)
    return {e.path: e.message for e in caught.value.errors}


def test_a_full_manifest_becomes_a_spec() -> None:
    manifest = parse_manifest(
        """
name: hello
namespace: team-a
handler: pkg.main:handle
runtime: python3.11
env: {GREETING: hi, PORT_NUMBER: 8080}
timeout: 1500ms
concurrency: 4
visibility: private
scale: {min: 1, max: 5, target: 10, metric: rps, scaleToZeroGracePeriod: 1m}
rollout: {strategy: canary, stepWeight: 20, maxWeight: 60, interval: 10s}
"""
    )
    assert (manifest.name, manifest.namespace) == ("hello", "team-a")
    spec = manifest.spec
    assert spec.handler == "pkg.main:handle"
    assert spec.env == {"GREETING": "hi", "PORT_NUMBER": "8080"}
    assert spec.timeout == 1.5
    assert spec.concurrency == 4
    assert spec.visibility == "private"
    assert (spec.scale.min, spec.scale.max, spec.scale.metric) == (1, 5, "rps")
    assert spec.scale.scale_to_zero_grace_period == 60.0
    assert (spec.rollout.strategy, spec.rollout.step_weight, spec.rollout.interval) == (
        "canary",
        20,
        10.0,
    )


def test_defaults_fill_what_is_left_out() -> None:
    spec = parse_manifest("name: a\nhandler: main:handle\n").spec
    assert (spec.runtime, spec.timeout, spec.concurrency, spec.visibility) == (
        "python",
        30.0,
        0,
        "public",
    )
    assert spec.rollout.strategy == "immediate"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("name: Hello\nhandler: m:f", "name", "DNS-1123"),
        ("name: -a\nhandler: m:f", "name", "DNS-1123"),
        ("name: " + "a" * 51 + "\nhandler: m:f", "name", "at most 50"),
        ("handler: m:f", "name", "required"),
        ("name: a", "handler", "required"),
        ("name: a\nhandler: main", "handler", "module:function"),
        ("name: a\nhandler: m:f\nruntime: node18", "runtime", "python"),
        ("name: a\nhandler: m:f\ntimeout: soon", "timeout", "duration"),
        ("name: a\nhandler: m:f\ntimeout: 0", "timeout", "at least"),
        ("name: a\nhandler: m:f\nconcurrency: -1", "concurrency", "at least 0"),
        ("name: a\nhandler: m:f\nconcurrency: 1.5", "concurrency", "whole number"),
        ("name: a\nhandler: m:f\nvisibility: all", "visibility", "public, private"),
        ("name: a\nhandler: m:f\nenv: {DEBUG: true}", "env.DEBUG", "quote"),
        ("name: a\nhandler: m:f\nenv: {PORT: '1'}", "env", "set by the platform"),
        ("name: a\nhandler: m:f\nenv: {1BAD: x}", "env", "variable name"),
        ("name: a\nhandler: m:f\nenv: [a]", "env", "mapping"),
        ("name: a\nhandler: m:f\nscale: {min: 3, max: 2}", "scale.min", "above scale.max"),
        ("name: a\nhandler: m:f\nscale: {metrc: rps}", "scale.metrc", "did you mean 'metric'"),
        ("name: a\nhandler: m:f\nhandlr: x", "handlr", "did you mean 'handler'"),
        (
            "name: a\nhandler: m:f\nrollout: {stepWeight: 60, maxWeight: 50}",
            "rollout.stepWeight",
            "above rollout.maxWeight",
        ),
        ("name: a\nhandler: m:f\nserviceAccount: Bad_SA", "serviceAccount", "DNS-1123"),
    ],
)
def test_each_bad_field_is_named_with_a_fix(text: str, field: str, words: str) -> None:
    found = problems(text)
    assert field in found, found
    assert words in found[field]


def test_every_problem_is_reported_at_once() -> None:
    found = problems("name: Bad\nhandler: nope\ntimeout: x\nvisibility: y\n")
    assert set(found) == {"name", "handler", "timeout", "visibility"}


def test_yaml_syntax_errors_say_where() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_manifest("name: a\nhandler: [unclosed\n")
    assert "line" in str(caught.value)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string"])
def test_a_manifest_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_manifest(text)
    assert "mapping" in str(caught.value)


def test_function_resources_round_trip() -> None:
    function = parse_manifest("name: a\nhandler: m:f\nscale: {min: 2}\n").function()
    again = parse_function(function.to_dict())
    assert again.spec == function.spec
    assert again.to_dict()["spec"]["scale"] == {"min": 2, "max": 0, "metric": "concurrency"}


def test_function_resources_must_agree_with_the_url() -> None:
    body = {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "a"},
        "spec": {"handler": "m:f"},
    }
    with pytest.raises(ValidationError) as caught:
        parse_function(body, name="b", namespace="default")
    assert "metadata.name" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        parse_function({**body, "kind": "Revision", "spec": {}}, name="a")
    paths = {e.path for e in caught.value.errors}
    assert {"kind", "spec.handler"} <= paths


def test_the_openapi_schema_follows_the_validation_schema() -> None:
    schema = openapi(SPEC_FIELDS)
    assert schema["required"] == ["handler"]
    assert schema["properties"]["visibility"]["enum"] == ["public", "private"]
    assert schema["properties"]["scale"]["properties"]["min"]["minimum"] == 0
    assert schema["properties"]["env"]["additionalProperties"] == {"type": "string"}
