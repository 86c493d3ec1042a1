"""How the local runtime sandboxes replicas: the host's facts, read once, the
function -> uid record and the cgroups; ``layout_for`` turns one replica's launch into
its sandbox, ``group_for`` into its cgroup (memory, cpu and pids limits)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.model.resources import ResourcesSpec
from fnmesh.platform.sandbox.cgroups import Cgroups, Group
from fnmesh.platform.sandbox.layout import DEFAULT_SCRATCH_BYTES, Host, Layout, plan
from fnmesh.platform.sandbox.limits import Limits, limits_for
from fnmesh.platform.sandbox.uids import UidBook

# the runtime's own code, bound read-only into every sandbox
RUNTIME_PACKAGES = ("fnmesh.functions", "fnmesh.platform")


@dataclass(frozen=True, slots=True)
class Sandboxing:
    host: Host
    uids: UidBook
    scratch_bytes: int = DEFAULT_SCRATCH_BYTES
    cgroups: Cgroups | None = None  # None: no writable cgroups here (no limits)
    policy: ResourcePolicy = field(default_factory=ResourcePolicy)  # defaults to fill in

    # warm process -> the group it joined when it started (see ``prepare``)
    prepared: dict[int, Group] = field(default_factory=dict)

    def prepare(self, pid: int) -> None:
        """Put a warm process in a group of its own now, off the cold path: moving a
        process between groups waits for a kernel grace period (about 6 ms here)."""
        if self.cgroups is not None:
            group = self.cgroups.create(f"w-{pid}", Limits())
            group.add(pid)
            self.prepared[pid] = group

    def group_for(self, name: str, resources: ResourcesSpec, pid: int) -> Group | None:
        """The cgroup of one replica's runtime ``pid`` with its limits (the platform's
        defaults filling in what the function did not ask for); None without cgroups.
        A warm process's own group is given the limits; another gets a new group."""
        if self.cgroups is None:
            return None
        limits = limits_for(self.policy.effective(resources))
        group = self.prepared.pop(pid, None)
        if group is not None:
            self.cgroups.set_limits(group, limits)
            return group
        group = self.cgroups.create(name, limits)
        group.add(pid)
        return group

    def layout_for(
        self,
        *,
        namespace: str,
        function: str,
        replica: str,
        source: Path,
        sites: tuple[Path, ...],
        sockets: Path,
        root: Path,
        secrets: Mapping[str, Mapping[str, bytes]],
    ) -> Layout:
        uid = self.uids.uid(namespace, function)
        return plan(
            self.host,
            uid=uid,
            gid=uid,
            hostname=replica[:63],
            root=str(root),
            source=str(source),
            sites=[str(s) for s in sites],
            sockets=str(sockets),
            scratch_bytes=self.scratch_bytes,
            secrets=secrets,
        )
