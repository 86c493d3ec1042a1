from dataclasses import replace
from pathlib import Path

import pytest

from fnmesh.platform.build import BuildLimits, BuildResult
from fnmesh.platform.build.pack import pack
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.model import Function, TrafficTarget, ValidationError, parse_manifest
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.store import SqliteStore


class FakeBuilder:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def build(self, bundle: bytes, *, build_id: str, log: object = None) -> BuildResult:
        return BuildResult(
            build_id,
            "sha256:" + "b" * 64,
            self.root,
            None,
            False,
            0.0,
            self.root / f"{build_id}.log",
        )


async def test_a_deploy_keeps_traffic_set_by_hand_unless_fn_yaml_declares_some(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    service = DeployService(store, FakeBuilder(tmp_path), BuildLimits())  # type: ignore[arg-type]
    manifest = parse_manifest("name: hello\nhandler: main:handle\n")
    await service.deploy(manifest, b"", build_id="b1")

    current = Function.from_dict(store.get("Function", "default", "hello"))
    pinned = [TrafficTarget("hello-00001", 100, tag="stable")]
    store.update(replace(current, spec=replace(current.spec, traffic=pinned)).to_dict())

    await service.deploy(manifest, b"", build_id="b2")
    after = Function.from_dict(store.get("Function", "default", "hello"))
    assert after.spec.traffic == pinned
    assert after.spec.artifact is not None and after.spec.artifact.build == "b2"


def test_a_deploy_asking_for_more_than_the_platform_allows_is_refused_before_building(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "fn.yaml").write_text(
        "name: hello\nhandler: main:handle\nresources: {memory: 8Gi, cpu: 500m}\n"
    )
    (source / "main.py").write_text("def handle(request):\n    return 'hi'\n")
    store = SqliteStore(tmp_path / "state.db")
    service = DeployService(
        store,
        FakeBuilder(tmp_path),  # type: ignore[arg-type]
        BuildLimits(),
        resources=ResourcePolicy(max_memory=4 * 1024**3),
    )
    with pytest.raises(ValidationError) as caught:
        service.prepare("default", "hello", pack(source))
    (error,) = caught.value.errors
    assert error.path == "resources.memory"
    assert "asks for 8Gi, above this platform's maximum of 4Gi: ask for at most 4Gi" in str(error)
