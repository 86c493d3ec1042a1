"""The activator: holds requests for revisions with no ready capacity and releases them
as soon as a replica is ready, poking the autoscaler at once.

``burst`` is the burst-capacity choice (pure); ``throttle`` is the per-revision
admission (a bounded FIFO queue in front of a capacity of ``replicas * concurrency``
slots); ``activator`` ties it to the route table, the
autoscaler's poke and the per-second load reports; ``settings`` holds its configuration.
"""

from fnmesh.activator.activator import Activator, BurstCapacity
from fnmesh.activator.burst import through_activator
from fnmesh.activator.settings import ActivatorConfig
from fnmesh.platform.admission import Refused

__all__ = ["Activator", "ActivatorConfig", "BurstCapacity", "Refused", "through_activator"]
