import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from fnmesh.platform.build import BuildLimits, BuildResult
from fnmesh.platform.build.pack import pack
from fnmesh.platform.deploy import DeployConflict, DeployService
from fnmesh.platform.model import Function, TrafficTarget, ValidationError, parse_manifest
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.store import SqliteStore

MANIFEST = parse_manifest("name: hello\nhandler: main:handle\n")


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
    stamp(store)

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


def stamp(store: SqliteStore) -> None:
    """What the controller does once it has stamped the current generation."""
    current = Function.from_dict(store.get("Function", "default", "hello"))
    status = replace(current.status, observed_generation=current.metadata.generation)
    store.update_status(current.with_status(status).to_dict())


def service(tmp_path: Path, store: SqliteStore, settle: float = 5.0) -> DeployService:
    return DeployService(
        store,
        FakeBuilder(tmp_path),  # type: ignore[arg-type]
        BuildLimits(),
        settle_timeout=settle,
    )


async def test_a_stale_precondition_is_refused_before_the_build(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    deploys = service(tmp_path, store)
    first = await deploys.deploy(MANIFEST, b"", build_id="b1", expect_generation=0)
    assert first.generation == 1
    stamp(store)
    with pytest.raises(DeployConflict, match=r"it did not exist, now generation 1"):
        await deploys.deploy(MANIFEST, b"", build_id="b2", expect_generation=0)
    with pytest.raises(DeployConflict, match=r"was at generation 3, now generation 1"):
        await deploys.deploy(MANIFEST, b"", build_id="b2", expect_generation=3)
    second = await deploys.deploy(MANIFEST, b"", build_id="b2", expect_generation=1)
    assert second.generation == 2
    store.close()


async def test_a_deploy_waits_until_the_previous_one_is_stamped(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    deploys = service(tmp_path, store)
    await deploys.deploy(MANIFEST, b"", build_id="b1")
    waiting = asyncio.create_task(deploys.deploy(MANIFEST, b"", build_id="b2"))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # b1 has no revision yet: replacing it would lose it
    artifact = Function.from_dict(store.get("Function", "default", "hello")).spec.artifact
    assert artifact is not None and artifact.build == "b1"
    stamp(store)
    result = await asyncio.wait_for(waiting, 5)
    assert result.generation == 2
    assert result.function["spec"]["artifact"]["build"] == "b2"
    store.close()


async def test_a_deploy_gives_up_when_the_previous_one_is_never_stamped(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    deploys = service(tmp_path, store, settle=0.1)
    await deploys.deploy(MANIFEST, b"", build_id="b1")
    with pytest.raises(DeployConflict, match=r"build b1, generation 1\) has not been stamped"):
        await deploys.deploy(MANIFEST, b"", build_id="b2")
    artifact = Function.from_dict(store.get("Function", "default", "hello")).spec.artifact
    assert artifact is not None and artifact.build == "b1"
    store.close()


async def test_concurrent_deploys_with_the_same_precondition_one_wins(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    deploys = service(tmp_path, store)
    await deploys.deploy(MANIFEST, b"", build_id="b0")
    stamp(store)
    outcomes = await asyncio.gather(
        *(
            deploys.deploy(MANIFEST, b"", build_id=f"b{i}", expect_generation=1)
            for i in range(1, 6)
        ),
        return_exceptions=True,
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, DeployConflict)]
    assert (len(won), len(lost)) == (1, 4)
    assert all("another deploy or change went first" in str(o) for o in lost)
    store.close()
