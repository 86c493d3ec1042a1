"""Containment of a replica's processes: cgroup limits on memory, cpu and processes.

A low layer beside ``mesh`` and ``store``: it knows the model's resource shapes and the
kernel's files, nothing of the components above. Pure decisions (which files, which
values, what the counters mean) live in ``limits``; ``cgroups`` is the driver that
reads and writes ``/sys/fs/cgroup``.
"""

from fnmesh.platform.sandbox.cgroups import CgroupError, Cgroups, Group, detect
from fnmesh.platform.sandbox.limits import Limits, limits_for

__all__ = ["CgroupError", "Cgroups", "Group", "Limits", "detect", "limits_for"]
