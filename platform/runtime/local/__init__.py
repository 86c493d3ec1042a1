"""Replicas as local processes: the embedded platform's runtime.

``supervisor`` keeps each revision at its desired replica count (start, wait for ready,
restart with backoff, drain and stop); ``replica`` launches one process; ``logbook``
captures replicas' output per function for ``fn logs``; ``backoff`` is the pure restart
policy.
"""

from fnmesh.platform.runtime.local.logbook import LogBook
from fnmesh.platform.runtime.local.supervisor import LocalRuntime

__all__ = ["LocalRuntime", "LogBook"]
