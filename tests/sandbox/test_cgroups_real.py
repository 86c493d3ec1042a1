"""The driver on this machine's real cgroups (v1 or v2), with real processes.

These need root and a writable memory, cpu and pids hierarchy; without them they fail,
saying so, rather than skip: containment that is not tested is not there. Each test
run uses a parent of its own (``fnmesh-test-<random>``) and removes it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fnmesh.platform.sandbox.cgroups import Cgroups, Group, detect
from fnmesh.platform.sandbox.limits import Limits

Mi = 1024 * 1024
ROOT = Path("/sys/fs/cgroup")
NEEDED = ("memory", "cpu", "pids")


@pytest.fixture
def cgroups() -> Iterator[Cgroups]:
    found = detect(ROOT, parent=f"fnmesh-test-{secrets.token_hex(4)}")
    if found is None:
        pytest.fail(
            f"no writable cgroup hierarchy under {ROOT}: these tests need root and cgroup v1 "
            "(memory, cpu, pids mounted) or v2 with those controllers"
        )
    missing = [c for c in NEEDED if c not in found.controllers]
    if missing:
        pytest.fail(
            f"the {', '.join(missing)} cgroup controller is not writable under {ROOT} "
            f"(found {found!r}): mount or delegate it"
        )
    yield found
    found.sweep(remove_parent=True)
    assert not any(p.exists() for p in found.parent_paths().values())


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:g}s")
        time.sleep(0.01)


@contextlib.contextmanager
def start_in(group: Group, script: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Python child put into ``group`` before it runs ``script`` (it waits for a line)."""
    with subprocess.Popen(
        [sys.executable, "-c", "import sys\nsys.stdin.readline()\n" + script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as child:
        try:
            group.add(child.pid)
            membership = Path(f"/proc/{child.pid}/cgroup").read_text()
            assert f"/{group.name}\n" in membership, membership
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
            yield child
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()


def read_line(child: subprocess.Popen[bytes], timeout: float = 10.0) -> bytes:
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"the child said nothing within {timeout:g}s")
    return child.stdout.readline()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gone(pid: int) -> bool:
    """The process has exited (a zombie awaiting its parent counts: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_memory_over_the_limit_is_oom_killed(cgroups: Cgroups) -> None:
    group = cgroups.create("oom", Limits(memory=64 * Mi, cpu_millis=None, pids=None))
    with start_in(group, "data = b'x' * (200 * 1024 * 1024)\nprint('survived')\n") as child:
        assert child.wait(timeout=30) == -9
        assert child.stdout is not None and child.stdout.read() == b""
    assert group.oom_killed()
    peak = group.memory_peak()
    assert peak is None or peak <= 64 * Mi + 1 * Mi


def test_memory_under_the_limit_is_not_an_oom(cgroups: Cgroups) -> None:
    group = cgroups.create("fits", Limits(memory=64 * Mi, cpu_millis=None, pids=None))
    with start_in(group, "data = b'x' * (8 * 1024 * 1024)\n") as child:
        assert child.wait(timeout=30) == 0
    assert not group.oom_killed()


BOMB = """
import os, time
depth, forks, told = 0, 0, False
while True:
    if depth < 4 and forks < 3:  # 121 processes at most, should the limit fail
        try:
            pid = os.fork()
        except OSError:
            if not told:
                os.write(1, b"blocked\\n")
                told = True
            time.sleep(0.02)
            continue
        if pid == 0:
            depth, forks = depth + 1, 0
        else:
            forks += 1
        continue
    time.sleep(0.1)
"""


def test_a_fork_bomb_is_contained_and_killed(cgroups: Cgroups) -> None:
    group = cgroups.create("bomb", Limits(memory=256 * Mi, cpu_millis=None, pids=16))
    with start_in(group, BOMB) as child:
        try:
            assert read_line(child) == b"blocked\n"  # a fork was refused: the limit holds
            inside = group.pids()
            assert 1 < len(inside) <= 16
            current = (group.paths.get("pids") or group.path) / "pids.current"
            assert int(current.read_text()) <= 16
        finally:
            group.kill()
        assert group.pids() == []
        assert child.wait(timeout=10) == -9
    wait_for(lambda: all(gone(pid) for pid in inside), "every process of the group exiting")
    group.remove()
    assert not any(path.exists() for path in group.paths.values())


def test_a_cpu_quota_of_100m_gives_about_a_tenth_of_a_core(cgroups: Cgroups) -> None:
    group = cgroups.create("busy", Limits(memory=None, cpu_millis=100, pids=None))
    with start_in(group, "print('spinning', flush=True)\nwhile True:\n    pass\n") as child:
        try:
            assert read_line(child) == b"spinning\n"
            start_cpu, start = cpu_seconds(child.pid), time.monotonic()
            time.sleep(2.0)  # the measuring window
            used = cpu_seconds(child.pid) - start_cpu
            share = used / (time.monotonic() - start)
        finally:
            group.kill()
    assert 0.02 < share < 0.25, f"the busy loop got {share:.0%} of a core"
    stat = (group.paths.get("cpu") or group.path) / "cpu.stat"
    assert int(dict(line.split() for line in stat.read_text().splitlines())["nr_throttled"]) > 0


def test_sweep_kills_and_removes_groups_left_behind(cgroups: Cgroups) -> None:
    left = cgroups.create("left-behind", Limits(memory=64 * Mi, cpu_millis=200, pids=32))
    with start_in(left, "import time\nprint('up', flush=True)\ntime.sleep(600)\n") as child:
        assert read_line(child) == b"up\n"
        later = detect(ROOT, parent=cgroups.parent)  # the next start of the platform
        assert later is not None
        assert later.sweep() == ["left-behind"]
        assert child.wait(timeout=10) == -9
    assert not any(path.exists() for path in left.paths.values())
    assert later.groups() == []
