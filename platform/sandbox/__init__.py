"""Containment of untrusted function code: namespaces, mounts, identities and limits.

A low layer beneath ``mesh`` and ``store``: it knows the model's resource shapes and the
kernel's interfaces, nothing of the components above. ``layout`` decides (purely) what a
replica's sandbox shows; ``enter`` builds it with the system calls in ``syscalls`` inside
a warm runtime process and drops privileges; ``uids`` gives every function an
unprivileged uid of its own. ``limits`` decides which cgroup files get which values;
``cgroups`` is the driver that reads and writes ``/sys/fs/cgroup`` (v1 and v2).
"""

from fnmesh.platform.sandbox.cgroups import CgroupError, Cgroups, Group, detect
from fnmesh.platform.sandbox.limits import Limits, limits_for

__all__ = ["CgroupError", "Cgroups", "Group", "Limits", "detect", "limits_for"]
