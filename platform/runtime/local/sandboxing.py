"""How the local runtime sandboxes replicas: the host's facts, read once, and the
function -> uid record; ``layout_for`` turns one replica's launch into its sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fnmesh.platform.sandbox.layout import DEFAULT_SCRATCH_BYTES, Host, Layout, plan
from fnmesh.platform.sandbox.uids import UidBook

# the runtime's own code, bound read-only into every sandbox
RUNTIME_PACKAGES = ("fnmesh.functions", "fnmesh.platform")


@dataclass(frozen=True, slots=True)
class Sandboxing:
    host: Host
    uids: UidBook
    scratch_bytes: int = DEFAULT_SCRATCH_BYTES

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
