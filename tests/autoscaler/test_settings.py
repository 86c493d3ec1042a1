from dataclasses import replace

from fnmesh.autoscaler.settings import AutoscalerConfig, scaling_spec
from fnmesh.platform.model import Artifact, parse_manifest
from fnmesh.platform.model.resources import ObjectMeta, Revision, revision_spec_for

DIGEST = "sha256:" + "a" * 64


def revision(manifest: str) -> Revision:
    function = parse_manifest(manifest).function()
    function = replace(function, spec=replace(function.spec, artifact=Artifact(digest=DIGEST)))
    return Revision(ObjectMeta(name="f-00001"), revision_spec_for(function))


def test_the_function_overrides_platform_defaults_one_by_one() -> None:
    defaults = AutoscalerConfig(stable_window=6.0, scale_to_zero_grace_period=2.0, max_scale=9)
    spec = scaling_spec(
        revision(
            "name: f\nhandler: m:f\nconcurrency: 4\nscale: {min: 1, target: 3, stableWindow: 20s}\n"
        ),
        defaults,
    )
    assert (spec.min_scale, spec.max_scale, spec.target) == (1, 9, 3.0)
    assert spec.container_concurrency == 4
    assert spec.stable_window == 20.0
    assert spec.scale_to_zero_grace_period == 2.0
    assert spec.validate() == []


def test_max_scale_of_the_function_wins_and_bounds_min() -> None:
    spec = scaling_spec(
        revision("name: f\nhandler: m:f\nscale: {min: 2, max: 3}\n"), AutoscalerConfig(max_scale=20)
    )
    assert (spec.min_scale, spec.max_scale) == (2, 3)
