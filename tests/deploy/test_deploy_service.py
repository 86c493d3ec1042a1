from dataclasses import replace
from pathlib import Path

from fnmesh.platform.build import BuildLimits, BuildResult
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.model import Function, TrafficTarget, parse_manifest
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
