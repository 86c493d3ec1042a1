"""A function's ``resources``: quantities, validation, freezing into a revision, the policy."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fnmesh.platform.model import Artifact, ResourcesSpec, ValidationError
from fnmesh.platform.model.manifest import parse_function, parse_manifest
from fnmesh.platform.model.quantities import format_cpu, format_memory, parse_cpu, parse_memory
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.model.resources import revision_spec_for
from fnmesh.platform.model.schema import openapi
from fnmesh.platform.model.spec_schema import SPEC_FIELDS

Mi = 1024 * 1024
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256Mi", 256 * Mi),
        ("1Gi", 1024 * Mi),
        ("0.5Gi", 512 * Mi),
        ("512Ki", 512 * 1024),
        ("128M", 128_000_000),
        ("2G", 2_000_000_000),
        ("1k", 1000),
        (268435456, 256 * Mi),
        ("268435456", 256 * Mi),
    ],
)
def test_memory_quantities(text: object, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("256m", "write 256Mi"),  # milli-bytes: the classic slip
        ("lots", "'256Mi'"),
        ("-1Mi", "'256Mi'"),
        ("1.5", "whole number of bytes"),
        (True, "'256Mi'"),
        ("256MB", "'256Mi'"),
    ],
)
def test_memory_refusals_name_the_fix(text: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "millis"),
    [("500m", 500), ("0.5", 500), (0.5, 500), (2, 2000), ("2", 2000), ("100m", 100), (0.25, 250)],
)
def test_cpu_quantities(text: object, millis: int) -> None:
    assert parse_cpu(text) == millis


@pytest.mark.parametrize(
    ("text", "words"),
    [("0.5m", "finer than one millicore"), ("0.0001", "finer"), ("half", "'500m'"), (-1, "'500m'")],
)
def test_cpu_refusals_name_the_fix(text: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_cpu(text)


def test_formatting_is_the_shortest_exact_spelling() -> None:
    assert [format_memory(n) for n in (256 * Mi, 1024 * Mi, 1536, 1000)] == [
        "256Mi",
        "1Gi",
        "1536",  # 1.5Ki is not a whole number of Ki
        "1000",
    ]
    assert [format_cpu(n) for n in (500, 1000, 1500, 2000)] == ["500m", "1", "1500m", "2"]


def test_fn_yaml_resources_are_stored_as_numbers() -> None:
    manifest = parse_manifest(
        "name: hello\nhandler: main:handle\nresources: {memory: 256Mi, cpu: 500m, pids: 128}\n"
    )
    assert manifest.spec.resources == ResourcesSpec(memory=256 * Mi, cpu=0.5, pids=128)
    assert manifest.spec.resources.cpu_millis == 500
    wire = manifest.function().to_dict()["spec"]["resources"]
    assert wire == {"memory": 256 * Mi, "cpu": 0.5, "pids": 128}


def test_a_stored_function_reads_back_the_same() -> None:
    """What the API hands out (``fn get -o yaml``) can be applied again unchanged."""
    first = parse_manifest("name: hello\nhandler: main:handle\nresources: {cpu: 2, memory: 1Gi}\n")
    body = first.function().to_dict()
    again = parse_function(body)
    assert again.spec.resources == first.spec.resources == ResourcesSpec(memory=1024 * Mi, cpu=2.0)


def test_every_resource_problem_is_reported_with_its_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_manifest(
            "name: hello\nhandler: main:handle\n"
            "resources: {memory: 256m, cpu: 1m, pids: 2, disk: 1Gi}\n"
        )
    fields = {error.path: error.message for error in caught.value.errors}
    assert "write 256Mi" in fields["resources.memory"]
    assert "below the least a replica can run with, 10m" in fields["resources.cpu"]
    assert "at least 8" in fields["resources.pids"]
    assert "unknown field" in fields["resources.disk"]


def test_a_revision_freezes_the_resources() -> None:
    manifest = parse_manifest("name: hello\nhandler: main:handle\nresources: {memory: 64Mi}\n")
    function = manifest.function()
    function = replace(function, spec=replace(function.spec, artifact=Artifact(digest=DIGEST)))
    spec = revision_spec_for(function)
    assert spec.resources == ResourcesSpec(memory=64 * Mi)


def test_openapi_renders_resources_as_numbers() -> None:
    schema = openapi(SPEC_FIELDS)["properties"]["resources"]["properties"]
    assert schema["memory"]["type"] == "integer"
    assert schema["memory"]["minimum"] == 16 * Mi
    assert schema["cpu"] == {
        "type": "number",
        "minimum": 0.01,
        "description": schema["cpu"]["description"],
    }
    assert schema["pids"]["type"] == "integer"


POLICY = ResourcePolicy(
    default_memory=256 * Mi,
    default_cpu=1000,
    default_pids=256,
    max_memory=4096 * Mi,
    max_cpu=2000,
    max_pids=4096,
)


@pytest.mark.parametrize(
    ("asked", "field", "words"),
    [
        (ResourcesSpec(memory=8192 * Mi), "resources.memory", "asks for 8Gi, above this platform's "
         "maximum of 4Gi: ask for at most 4Gi"),
        (ResourcesSpec(cpu=4.0), "resources.cpu", "asks for 4, above this platform's maximum of 2"),
        (ResourcesSpec(cpu=2.5), "resources.cpu", "asks for 2500m"),
        (ResourcesSpec(pids=5000), "resources.pids", "asks for 5000, above this platform's "
         "maximum of 4096"),
    ],
)  # fmt: skip
def test_the_policy_refuses_more_than_its_maximum(
    asked: ResourcesSpec, field: str, words: str
) -> None:
    (refusal,) = POLICY.refusals(asked)
    assert refusal.path == field
    assert words in refusal.message
    assert f"resources.max_{field.rsplit('.', 1)[1]}" in refusal.message


def test_the_policy_accepts_its_maximum_and_fills_defaults() -> None:
    at_most = ResourcesSpec(memory=4096 * Mi, cpu=2.0, pids=4096)
    assert POLICY.refusals(at_most) == []
    assert POLICY.effective(ResourcesSpec(cpu=0.5)) == ResourcesSpec(
        memory=256 * Mi, cpu=0.5, pids=256
    )


def test_a_policy_whose_default_exceeds_its_maximum_is_a_problem() -> None:
    policy = ResourcePolicy(default_cpu=3000, max_cpu=2000)
    assert [name for name, _ in policy.problems()] == ["default_cpu"]
