"""Whether a request goes through the activator: the burst-capacity choice (pure).

Knative's rule: a revision with no ready replica always needs the activator (it holds
the request and wakes the autoscaler); one with replicas needs it while its *excess
burst capacity* -- the autoscaler's ``ready * per-replica capacity - observed panic
concurrency - target burst capacity`` -- is negative, so a burst queues in the
activator's bounded FIFO instead of piling onto the few replicas there are. Before the
autoscaler's first decision for a revision (``None``) requests go straight to replicas.
"""

from __future__ import annotations


def through_activator(ready_replicas: int, excess_burst_capacity: float | None) -> bool:
    if ready_replicas <= 0:
        return True
    return excess_burst_capacity is not None and excess_burst_capacity < 0
