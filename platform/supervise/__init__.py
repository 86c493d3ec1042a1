"""Long-lived background tasks that never die silently.

A ``TaskBoard`` runs each named loop under supervision: any exception that escapes it
(a store that cannot write, a bug) is logged, counted and followed by a restart after a
growing backoff; ``states`` tells ``/healthz`` which tasks are failing and why. Loops
that handle failures of single items themselves (a controller reconciling one function)
report them with ``Supervised.failed`` and ``Supervised.recovered``.

Nothing from the rest of the platform is imported here: every component can use it.
"""

from fnmesh.platform.supervise.board import Supervised, TaskBoard, TaskState

__all__ = ["Supervised", "TaskBoard", "TaskState"]
