"""The cgroup driver: groups with limits for a replica's processes, v2 and v1.

``detect(root)`` finds which cgroup layout the machine has under ``root`` and whether
this process may write to it:

- **v2** (unified): ``root/cgroup.controllers`` exists. Groups are folders under
  ``root/<parent>/``; the parent's ``cgroup.subtree_control`` enables memory, cpu and
  pids for them. A group is killed at once with ``cgroup.kill`` where the kernel has it.
- **v1**: one hierarchy per controller, ``root/memory``, ``root/cpu``, ``root/pids``;
  a group is a folder of the same name in each. It is killed by sending SIGKILL to
  whatever ``cgroup.procs`` lists until it lists nothing.

Put a process in its group before it runs anything untrusted: start it held (waiting on
a pipe, say), ``add(pid)``, then let it go -- or call ``join()`` in the child before it
execs -- so nothing it forks escapes the limits.

Every group lives under one parent folder (``fnmesh`` by default), so ``sweep`` can find
and remove what a previous run of the platform left behind. Which files are written is
decided in ``limits``; this module only reads and writes them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from fnmesh.platform.sandbox.limits import (
    V1_CONTROLLERS,
    V2,
    Limits,
    Write,
    check_group_name,
    parse_pids,
    subtree_control,
    v1_oom_kills,
    v1_writes,
    v2_oom_kills,
    v2_writes,
)

DEFAULT_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PARENT = "fnmesh"
KILL_TIMEOUT = 5.0
_V1_OPTIONAL = ("memory.memsw.limit_in_bytes", "memory.swappiness")
_V2_OPTIONAL = ("memory.swap.max", "memory.oom.group")

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class CgroupError(Exception):
    """A cgroup could not be made, changed or emptied; str() says which file and why."""


class Group:
    """One group: a folder per controller (v1) or one folder (v2, controller ``""``)."""

    def __init__(
        self,
        name: str,
        paths: Mapping[str, Path],
        *,
        version: int,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.name = name
        self.paths = dict(paths)
        self.version = version
        self._clock = clock
        self._sleep = sleep

    @property
    def path(self) -> Path:
        """The group's folder (v1: the memory one, else the first)."""
        return self.paths.get("memory", next(iter(self.paths.values())))

    def __repr__(self) -> str:
        return f"Group({self.name!r}, v{self.version}, {sorted(map(str, self.paths.values()))})"

    def add(self, pid: int) -> None:
        """Move process ``pid`` (and, from then on, everything it starts) into the group."""
        for folder in self.paths.values():
            _write(folder / "cgroup.procs", str(pid))

    def join(self) -> None:
        """Move the calling process into the group (e.g. in a child before it execs)."""
        self.add(os.getpid())

    def pids(self) -> list[int]:
        """Every process in the group, in any of its controllers."""
        texts = [_read(folder / "cgroup.procs") or "" for folder in self.paths.values()]
        return parse_pids(texts)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for going over its memory."""
        folder = self.paths.get("memory" if self.version == 1 else V2)
        if folder is None:
            return False
        if self.version == 2:
            return v2_oom_kills(_read(folder / "memory.events") or "") > 0
        return (
            v1_oom_kills(
                _read(folder / "memory.oom_control") or "", _read(folder / "memory.failcnt")
            )
            > 0
        )

    def memory_peak(self) -> int | None:
        """The most memory the group has used, in bytes; None when the kernel does not say."""
        folder = self.paths.get("memory" if self.version == 1 else V2)
        if folder is None:
            return None
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        text = (_read(folder / name) or "").strip()
        return int(text) if text.isdigit() else None

    def kill(self, timeout: float = KILL_TIMEOUT) -> None:
        """SIGKILL every process in the group and wait until it is empty (at most ``timeout``).

        With ``cgroup.kill`` (v2, Linux 5.14+) the kernel does it at once, forks in flight
        included; otherwise processes are killed as they are listed, round after round, so
        a process forked meanwhile is caught in the next round.
        """
        deadline = self._clock() + timeout
        switch = self.paths.get(V2, Path()) / "cgroup.kill"
        if self.version == 2 and switch.exists():
            _write(switch, "1")
        while True:
            left = self.pids()
            if not left:
                return
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self._clock() >= deadline:
                raise CgroupError(
                    f"group {self.name}: processes {left} were still running "
                    f"{timeout:g}s after SIGKILL"
                )
            self._sleep(0.005)

    def remove(self, timeout: float = KILL_TIMEOUT) -> None:
        """Kill what is left, then delete the group's folders."""
        self.kill(timeout)
        for folder in self.paths.values():
            _rmdir(folder, self._clock() + timeout, self._sleep, self._clock)


class Cgroups:
    """Groups under ``<root>/<controller>/<parent>`` (v1) or ``<root>/<parent>`` (v2)."""

    def __init__(
        self,
        root: Path,
        *,
        version: int,
        controllers: Iterable[str],
        parent: str = DEFAULT_PARENT,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        why = check_group_name(parent)
        if why:
            raise CgroupError(f"parent: {why}")
        self.root = root
        self.version = version
        self.controllers = tuple(controllers)
        self.parent = parent
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Cgroups(v{self.version}, {self.root}, {self.controllers}, parent={self.parent!r})"

    def parent_paths(self) -> dict[str, Path]:
        if self.version == 2:
            return {V2: self.root / self.parent}
        return {c: self.root / c / self.parent for c in self.controllers}

    def create(self, name: str, limits: Limits) -> Group:
        """A new, empty group ``name`` with ``limits``. Raises CgroupError naming the problem."""
        why = check_group_name(name)
        if why:
            raise CgroupError(why)
        missing = [c for c in limits.controllers() if c not in self.controllers]
        if missing:
            what = " and ".join(missing)
            raise CgroupError(
                f"cannot limit {', '.join(missing)}: no writable {what} cgroup for this "
                f"process under {self.root} (available: {', '.join(self.controllers) or 'none'}); "
                "enable the controller or leave that limit out"
            )
        parents = self.parent_paths()
        if self.version == 2:
            self._enable_v2(limits)
        paths = {key: folder / name for key, folder in parents.items()}
        made: list[Path] = []
        try:
            for folder in paths.values():
                folder.parent.mkdir(exist_ok=True)
                try:
                    folder.mkdir()
                except FileExistsError:
                    raise CgroupError(
                        f"group {folder} exists already: remove it (sweep) before reusing the name"
                    ) from None
                made.append(folder)
            group = Group(name, paths, version=self.version, clock=self._clock, sleep=self._sleep)
            for write in self._writes(group, limits):
                _write(paths[write.controller] / write.file, write.value)
        except (CgroupError, OSError) as error:
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            if isinstance(error, CgroupError):
                raise
            raise CgroupError(f"cannot create group {name} under {self.root}: {error}") from None
        return group

    def set_limits(self, group: Group, limits: Limits) -> None:
        """Give an existing group (one a process joined ahead of need) ``limits``: a few
        writes, where moving a process into a group waits for the kernel's grace period
        (about 6 ms here, on a cold start's path otherwise)."""
        missing = [c for c in limits.controllers() if c not in self.controllers]
        if missing:
            raise CgroupError(f"cannot limit {', '.join(missing)}: no writable cgroup for it")
        if self.version == 2:
            self._enable_v2(limits)
        try:
            for write in self._writes(group, limits):
                _write(group.paths[write.controller] / write.file, write.value)
        except OSError as error:
            raise CgroupError(f"cannot limit group {group.name}: {error}") from None

    def _writes(self, group: Group, limits: Limits) -> list[Write]:
        if self.version == 2:
            present = [f for f in _V2_OPTIONAL if (group.paths[V2] / f).exists()]
            return v2_writes(limits, present)
        memory = group.paths.get("memory")
        present = [f for f in _V1_OPTIONAL if memory is not None and (memory / f).exists()]
        return v1_writes(limits, present)

    def _enable_v2(self, limits: Limits) -> None:
        """Let the parent's children use the controllers ``limits`` needs."""
        parent = self.root / self.parent
        parent.mkdir(exist_ok=True)
        wanted = limits.controllers()
        for folder in (self.root, parent):
            change = subtree_control(
                wanted,
                _read(folder / "cgroup.controllers") or "",
                _read(folder / "cgroup.subtree_control") or "",
            )
            if change:
                _write(folder / "cgroup.subtree_control", change)

    def groups(self) -> list[Group]:
        """The groups under the parent now, whoever made them."""
        names: set[str] = set()
        for folder in self.parent_paths().values():
            with contextlib.suppress(FileNotFoundError):
                names |= {entry.name for entry in folder.iterdir() if entry.is_dir()}
        return [
            Group(
                name,
                {k: p / name for k, p in self.parent_paths().items() if (p / name).is_dir()},
                version=self.version,
                clock=self._clock,
                sleep=self._sleep,
            )
            for name in sorted(names)
        ]

    def sweep(self, *, remove_parent: bool = False) -> list[str]:
        """Kill and remove every group under the parent (left by an earlier run); their names.

        ``remove_parent`` deletes the parent folders too (tests use a parent of their own).
        """
        swept = []
        for group in self.groups():
            group.remove()
            swept.append(group.name)
        if remove_parent:
            for folder in self.parent_paths().values():
                _rmdir(folder, self._clock() + KILL_TIMEOUT, self._sleep, self._clock)
        return swept


def detect(
    root: Path = DEFAULT_ROOT,
    *,
    parent: str = DEFAULT_PARENT,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Cgroups | None:
    """The cgroups this process may write under ``root``, or None when there are none.

    v2 when ``root`` is a unified hierarchy (it has ``cgroup.controllers``); else v1
    with whichever of memory, cpu and pids have a writable hierarchy of their own.
    """
    if (root / "cgroup.controllers").is_file():
        if not os.access(root, os.W_OK):
            return None
        available = (_read(root / "cgroup.controllers") or "").split()
        controllers = [c for c in V1_CONTROLLERS if c in available]
        if not controllers:
            return None
        return Cgroups(
            root, version=2, controllers=controllers, parent=parent, clock=clock, sleep=sleep
        )
    controllers = [
        c
        for c in V1_CONTROLLERS
        if (root / c / "cgroup.procs").is_file() and os.access(root / c, os.W_OK)
    ]
    if not controllers:
        return None
    return Cgroups(
        root, version=1, controllers=controllers, parent=parent, clock=clock, sleep=sleep
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as error:
        raise CgroupError(f"cannot read {path}: {error.strerror or error}") from None


def _write(path: Path, value: str) -> None:
    try:
        with path.open("w") as file:
            file.write(value)
    except OSError as error:
        raise CgroupError(f"cannot write {value!r} to {path}: {error.strerror or error}") from None


def _rmdir(folder: Path, deadline: float, sleep: Sleep, clock: Clock) -> None:
    """Delete a group folder; the kernel may report it busy for a moment after a kill."""
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY or clock() >= deadline:
                raise CgroupError(f"cannot remove {folder}: {error.strerror or error}") from None
            sleep(0.01)
