"""Which cgroup files limits become, and what the kernel's counters mean: tables."""

from __future__ import annotations

import pytest

from fnmesh.platform.model import ResourcesSpec
from fnmesh.platform.sandbox.limits import (
    Limits,
    Write,
    check_group_name,
    keyed,
    limits_for,
    parse_pids,
    quota_us,
    subtree_control,
    v1_oom_kills,
    v1_writes,
    v2_oom_kills,
    v2_writes,
)

Mi = 1024 * 1024
ALL = Limits(memory=64 * Mi, cpu_millis=500, pids=16)


def test_a_revision_s_resources_become_limits() -> None:
    resources = ResourcesSpec(memory=256 * Mi, cpu=0.5, pids=128)
    assert limits_for(resources) == Limits(memory=256 * Mi, cpu_millis=500, pids=128)
    assert limits_for(ResourcesSpec()) == Limits(None, None, None)


@pytest.mark.parametrize(
    ("limits", "present", "writes"),
    [
        (
            ALL,
            ("memory.memsw.limit_in_bytes", "memory.swappiness"),
            [
                Write("memory", "memory.limit_in_bytes", str(64 * Mi)),
                Write("memory", "memory.memsw.limit_in_bytes", str(64 * Mi)),
                Write("memory", "memory.swappiness", "0"),
                Write("cpu", "cpu.cfs_period_us", "100000"),
                Write("cpu", "cpu.cfs_quota_us", "50000"),
                Write("pids", "pids.max", "16"),
            ],
        ),
        (  # no swap accounting: the memory limit alone
            Limits(memory=64 * Mi),
            (),
            [Write("memory", "memory.limit_in_bytes", str(64 * Mi))],
        ),
        (
            Limits(cpu_millis=2000),
            (),
            [
                Write("cpu", "cpu.cfs_period_us", "100000"),
                Write("cpu", "cpu.cfs_quota_us", "200000"),
            ],
        ),
        (Limits(), (), []),
    ],
)
def test_v1_writes(limits: Limits, present: tuple[str, ...], writes: list[Write]) -> None:
    assert v1_writes(limits, present) == writes


@pytest.mark.parametrize(
    ("limits", "present", "writes"),
    [
        (
            ALL,
            ("memory.swap.max", "memory.oom.group"),
            [
                Write("", "memory.max", str(64 * Mi)),
                Write("", "memory.swap.max", "0"),
                Write("", "memory.oom.group", "1"),
                Write("", "cpu.max", "50000 100000"),
                Write("", "pids.max", "16"),
            ],
        ),
        (Limits(memory=64 * Mi), (), [Write("", "memory.max", str(64 * Mi))]),
        (Limits(cpu_millis=100), (), [Write("", "cpu.max", "10000 100000")]),
    ],
)
def test_v2_writes(limits: Limits, present: tuple[str, ...], writes: list[Write]) -> None:
    assert v2_writes(limits, present) == writes


def test_the_quota_is_never_below_the_kernel_s_least() -> None:
    assert quota_us(1) == 1000
    assert quota_us(10) == 1000
    assert quota_us(250) == 25000


def test_limits_name_the_controllers_they_need() -> None:
    assert ALL.controllers() == ("memory", "cpu", "pids")
    assert Limits(pids=4).controllers() == ("pids",)


@pytest.mark.parametrize(
    ("wanted", "available", "enabled", "write"),
    [
        (("memory", "cpu", "pids"), "cpuset cpu io memory pids", "", "+memory +cpu +pids"),
        (("memory", "cpu"), "cpu memory", "memory", "+cpu"),
        (("memory",), "cpu memory", "memory cpu", None),
        (("pids",), "cpu memory", "", None),  # not available: nothing to enable
    ],
)
def test_subtree_control(
    wanted: tuple[str, ...], available: str, enabled: str, write: str | None
) -> None:
    assert subtree_control(wanted, available, enabled) == write


def test_oom_counters() -> None:
    assert v2_oom_kills("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n") == 1
    assert v2_oom_kills("low 0\nmax 3\noom 0\noom_kill 0\n") == 0
    assert v1_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n") == 2
    assert v1_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "40") == 0
    # kernels before 4.13 have no oom_kill line: a group under OOM that hit its limit
    assert v1_oom_kills("oom_kill_disable 0\nunder_oom 1\n", "3") == 1
    assert v1_oom_kills("oom_kill_disable 0\nunder_oom 0\n", "3") == 0


def test_keyed_and_pids_readers() -> None:
    assert keyed("nr_periods 10\nnr_throttled 4\nthrottled_time 123\n")["nr_throttled"] == 4
    assert parse_pids(["12\n7\n", "7\n30\n", ""]) == [7, 12, 30]


@pytest.mark.parametrize("name", ["", ".", "..", "-x", "a/b", "../escape", "x" * 200, "a b"])
def test_group_names_cannot_leave_their_folder(name: str) -> None:
    assert check_group_name(name) is not None


@pytest.mark.parametrize("name", ["hello-00001-abc", "fnmesh-test-1f2e", "r_1.2"])
def test_group_names(name: str) -> None:
    assert check_group_name(name) is None
