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
from fnmesh.platform.sandbox.limits import limits_for
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

    def group_for(self, name: str, resources: ResourcesSpec) -> Group | None:
        """A new cgroup for one replica with its limits (the platform's defaults filling
        in what the function did not ask for); None without cgroups."""
        if self.cgroups is None:
            return None
        return self.cgroups.create(name, limits_for(self.policy.effective(resources)))

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
