"""What a replica may use, and which cgroup files say so: pure decisions, no I/O here.

``Limits`` is the driver's input (bytes, millicores, a count). ``v1_writes`` and
``v2_writes`` turn it into the files to write, in order, given which optional files the
kernel offers; the ``*_oom_kills`` readers turn the kernel's counters into a count. The
driver (``cgroups``) does the reading and writing.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from fnmesh.platform.model.resources import ResourcesSpec

CPU_PERIOD_US = 100_000  # the scheduler's period; the quota is a share of it
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

# cgroup v1 keeps each controller in a hierarchy of its own
MEMORY, CPU, PIDS = "memory", "cpu", "pids"
V1_CONTROLLERS = (MEMORY, CPU, PIDS)
V2 = ""  # the unified hierarchy has one folder for every controller


@dataclass(frozen=True)
class Limits:
    """Memory in bytes, cpu in millicores (1000 = one core), pids a count; None: no limit."""

    memory: int | None = None
    cpu_millis: int | None = None
    pids: int | None = None

    def controllers(self) -> tuple[str, ...]:
        """The controllers these limits need."""
        wanted = (
            (MEMORY, self.memory),
            (CPU, self.cpu_millis),
            (PIDS, self.pids),
        )
        return tuple(name for name, value in wanted if value is not None)


def limits_for(resources: ResourcesSpec) -> Limits:
    """A revision's resources (with defaults filled in) as the driver's limits."""
    return Limits(memory=resources.memory, cpu_millis=resources.cpu_millis, pids=resources.pids)


@dataclass(frozen=True)
class Write:
    """Write ``value`` to ``file`` in the group's folder of ``controller`` (v2: ``""``)."""

    controller: str
    file: str
    value: str


def check_group_name(name: str) -> str | None:
    """Why ``name`` cannot name a group (it becomes a folder name), or None."""
    if not _NAME.match(name) or name in (".", ".."):
        return (
            f"{name!r} cannot name a cgroup: use letters, digits, '_', '-' and '.', "
            "at most 128, not starting with '.' or '-'"
        )
    return None


def quota_us(cpu_millis: int, period_us: int = CPU_PERIOD_US) -> int:
    """Microseconds of cpu per period for ``cpu_millis`` (at least the kernel's 1 ms)."""
    return max(1000, cpu_millis * period_us // 1000)


def v1_writes(limits: Limits, present: Collection[str] = ()) -> list[Write]:
    """Files for cgroup v1. ``present``: optional files the memory controller offers.

    Memory: the limit, then the same for memory+swap (so nothing spills into swap),
    which the kernel requires to be at least the memory limit. Cpu: the period, then the
    quota. Pids: the count.
    """
    out: list[Write] = []
    if limits.memory is not None:
        out.append(Write(MEMORY, "memory.limit_in_bytes", str(limits.memory)))
        if "memory.memsw.limit_in_bytes" in present:
            out.append(Write(MEMORY, "memory.memsw.limit_in_bytes", str(limits.memory)))
        if "memory.swappiness" in present:
            out.append(Write(MEMORY, "memory.swappiness", "0"))
    if limits.cpu_millis is not None:
        out.append(Write(CPU, "cpu.cfs_period_us", str(CPU_PERIOD_US)))
        out.append(Write(CPU, "cpu.cfs_quota_us", str(quota_us(limits.cpu_millis))))
    if limits.pids is not None:
        out.append(Write(PIDS, "pids.max", str(limits.pids)))
    return out


def v2_writes(limits: Limits, present: Collection[str] = ()) -> list[Write]:
    """Files for cgroup v2. ``present``: optional files the group offers.

    Memory: ``memory.max``, no swap, and one OOM kill takes the whole group (a replica
    half-killed is worse than a replica restarted). Cpu: ``cpu.max`` as "quota period".
    """
    out: list[Write] = []
    if limits.memory is not None:
        out.append(Write(V2, "memory.max", str(limits.memory)))
        if "memory.swap.max" in present:
            out.append(Write(V2, "memory.swap.max", "0"))
        if "memory.oom.group" in present:
            out.append(Write(V2, "memory.oom.group", "1"))
    if limits.cpu_millis is not None:
        out.append(Write(V2, "cpu.max", f"{quota_us(limits.cpu_millis)} {CPU_PERIOD_US}"))
    if limits.pids is not None:
        out.append(Write(V2, "pids.max", str(limits.pids)))
    return out


def subtree_control(wanted: Collection[str], available: str, enabled: str) -> str | None:
    """What to write to a v2 ``cgroup.subtree_control`` so children get ``wanted``.

    ``available`` is the folder's ``cgroup.controllers``, ``enabled`` its current
    ``cgroup.subtree_control``. None when nothing needs enabling.
    """
    have, on = set(available.split()), set(enabled.split())
    missing = [c for c in wanted if c in have and c not in on]
    return " ".join(f"+{c}" for c in missing) or None


def keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.events, memory.oom_control, cpu.stat) as a mapping."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def v1_oom_kills(oom_control: str, failcnt: str | None = None) -> int:
    """OOM kills in a v1 memory group: ``oom_kill`` of memory.oom_control (Linux 4.13+).

    Older kernels have no such counter; then a group that hit its limit and is under OOM
    is counted as one, which is the best they tell.
    """
    counters = keyed(oom_control)
    if "oom_kill" in counters:
        return counters["oom_kill"]
    hits = int(failcnt.strip()) if failcnt and failcnt.strip().isdigit() else 0
    return 1 if hits and counters.get("under_oom", 0) else 0


def v2_oom_kills(memory_events: str) -> int:
    """OOM kills in a v2 group, from ``memory.events``."""
    return keyed(memory_events).get("oom_kill", 0)


def parse_pids(texts: Collection[str]) -> list[int]:
    """The processes listed in ``cgroup.procs`` contents (several controllers: merged)."""
    found = {int(line) for text in texts for line in text.split() if line.isdigit()}
    return sorted(found)
