"""The driver against fake cgroup trees in a temporary folder: layout, files, counters.

A fake tree is made of ordinary folders and files, so what the kernel would do (make
control files, kill processes) does not happen; the real hierarchy is exercised in
``test_cgroups_real``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fnmesh.platform.sandbox.cgroups import CgroupError, detect
from fnmesh.platform.sandbox.limits import Limits

Mi = 1024 * 1024


def v1_tree(root: Path, controllers: tuple[str, ...] = ("memory", "cpu", "pids")) -> Path:
    for controller in controllers:
        (root / controller).mkdir(parents=True)
        (root / controller / "cgroup.procs").write_text("1\n")
    return root


def v2_tree(root: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("\n")
    return root


def test_v1_layout_and_limits(tmp_path: Path) -> None:
    cgroups = detect(v1_tree(tmp_path), parent="fnmesh-test")
    assert cgroups is not None and cgroups.version == 1
    group = cgroups.create("hello-00001-a", Limits(memory=64 * Mi, cpu_millis=100, pids=16))
    assert group.paths == {
        c: tmp_path / c / "fnmesh-test" / "hello-00001-a" for c in ("memory", "cpu", "pids")
    }
    read = {p.relative_to(tmp_path).as_posix(): p.read_text() for p in tmp_path.rglob("*.*")}
    assert read["memory/fnmesh-test/hello-00001-a/memory.limit_in_bytes"] == str(64 * Mi)
    assert read["cpu/fnmesh-test/hello-00001-a/cpu.cfs_period_us"] == "100000"
    assert read["cpu/fnmesh-test/hello-00001-a/cpu.cfs_quota_us"] == "10000"
    assert read["pids/fnmesh-test/hello-00001-a/pids.max"] == "16"
    # optional files the kernel did not offer are not made up
    assert "memory/fnmesh-test/hello-00001-a/memory.memsw.limit_in_bytes" not in read


def test_v1_adds_a_process_to_every_controller_and_lists_them(tmp_path: Path) -> None:
    cgroups = detect(v1_tree(tmp_path), parent="p")
    assert cgroups is not None
    group = cgroups.create("g", Limits())
    group.add(4242)
    assert {(path / "cgroup.procs").read_text() for path in group.paths.values()} == {"4242"}
    (group.paths["cpu"] / "cgroup.procs").write_text("4242\n4243\n")
    assert group.pids() == [4242, 4243]


def test_v1_oom_and_peak(tmp_path: Path) -> None:
    cgroups = detect(v1_tree(tmp_path), parent="p")
    assert cgroups is not None
    group = cgroups.create("g", Limits(memory=64 * Mi))
    memory = group.paths["memory"]
    assert not group.oom_killed()
    assert group.memory_peak() is None
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (memory / "memory.max_usage_in_bytes").write_text(f"{64 * Mi}\n")
    assert group.oom_killed()
    assert group.memory_peak() == 64 * Mi


def test_v1_with_some_controllers_refuses_a_limit_it_cannot_set(tmp_path: Path) -> None:
    cgroups = detect(v1_tree(tmp_path, ("memory",)), parent="p")
    assert cgroups is not None and cgroups.controllers == ("memory",)
    with pytest.raises(CgroupError, match=r"cannot limit cpu, pids: .*\(available: memory\)"):
        cgroups.create("g", Limits(memory=64 * Mi, cpu_millis=100, pids=16))
    assert not (tmp_path / "memory" / "p" / "g").exists()
    cgroups.create("g", Limits(memory=64 * Mi))


def test_no_tree_is_no_cgroups(tmp_path: Path) -> None:
    assert detect(tmp_path) is None
    assert detect(tmp_path / "missing") is None


def test_v2_enables_controllers_for_the_parent_s_children(tmp_path: Path) -> None:
    # the kernel gives a child the controllers its parent enabled; so does this fake
    v2_tree(tmp_path / "fnmesh-test", "cpu memory pids")
    cgroups = detect(v2_tree(tmp_path), parent="fnmesh-test")
    assert cgroups is not None and cgroups.version == 2
    assert cgroups.controllers == ("memory", "cpu", "pids")
    group = cgroups.create("g", Limits(memory=64 * Mi, cpu_millis=500, pids=32))
    assert group.paths == {"": tmp_path / "fnmesh-test" / "g"}
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (tmp_path / "fnmesh-test" / "cgroup.subtree_control").read_text() == (
        "+memory +cpu +pids"
    )
    folder = group.path
    assert (folder / "memory.max").read_text() == str(64 * Mi)
    assert (folder / "cpu.max").read_text() == "50000 100000"
    assert (folder / "pids.max").read_text() == "32"
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    (folder / "memory.peak").write_text("1234\n")
    assert group.oom_killed()
    assert group.memory_peak() == 1234


def test_a_group_name_is_checked_and_never_reused(tmp_path: Path) -> None:
    cgroups = detect(v2_tree(tmp_path), parent="p")
    assert cgroups is not None
    with pytest.raises(CgroupError, match="cannot name a cgroup"):
        cgroups.create("../../etc", Limits())
    cgroups.create("g", Limits())
    with pytest.raises(CgroupError, match="exists already: remove it"):
        cgroups.create("g", Limits())


def test_groups_lists_what_is_under_the_parent(tmp_path: Path) -> None:
    cgroups = detect(v1_tree(tmp_path), parent="p")
    assert cgroups is not None
    cgroups.create("a", Limits())
    cgroups.create("b", Limits())
    assert [g.name for g in cgroups.groups()] == ["a", "b"]
