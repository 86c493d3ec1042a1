"""THE inbound stack: every layer a request passes, in order, assembled in one function.

From the outside in (the TLS listener has already verified the caller's certificate):

1. ``AnswerReserved``   -- the platform's ``/_fnmesh/`` paths (health probes)
2. ``RecordResponses``  -- request/response counters and latency (metrics and stats)
3. ``TapRequests``      -- tap events while a tap session is open
4. ``Authorize``        -- the caller's identity against the policy (403)
5. ``Timeout``          -- the request timeout (504)
6. ``LimitConcurrency`` -- the concurrency limit and bounded queue (503), load integral
7. ``Forward``          -- to the function runtime over a pooled loopback connection
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fnmesh.platform.http import Handler
from fnmesh.platform.mesh.inbound.authz import Authorize, DenialCounter, PolicySource
from fnmesh.platform.mesh.inbound.concurrency import ConcurrencyState, LimitConcurrency
from fnmesh.platform.mesh.inbound.reserved import AnswerReserved, Draining
from fnmesh.platform.mesh.inbound.timeout import Timeout
from fnmesh.platform.mesh.metrics.layer import RecordResponses
from fnmesh.platform.mesh.metrics.responses import ResponseMetrics
from fnmesh.platform.mesh.tap.layer import TapRequests
from fnmesh.platform.mesh.tap.recorder import TapRecorder


@dataclass(frozen=True, slots=True)
class InboundParts:
    """What the layers need; each layer takes only its own part."""

    forward: Handler
    drain: Draining
    responses: ResponseMetrics
    tap: TapRecorder
    policies: PolicySource
    denials: DenialCounter
    concurrency: ConcurrencyState
    request_timeout: float
    identity: str  # this replica's identity: the tap events' destination
    revision: str
    clock: Callable[[], float]  # monotonic seconds (the loop's time)
    wall_clock: Callable[[], float]  # Unix seconds, for tap event times


def inbound_stack(parts: InboundParts) -> Handler:
    """Wrap ``parts.forward`` in the inbound layers; the result is the server's handler."""
    # 7. Forward: the innermost layer; only requests that passed every check reach the
    #    function, and upstream failures come back as 502/504 answers.
    handler: Handler = parts.forward
    # 6. Concurrency inside the timeout: a request waiting for a slot is still bound by
    #    its timeout, and a refused one (503) never took a slot. The load integral counts
    #    queued requests too, as demand for the autoscaler.
    handler = LimitConcurrency(handler, parts.concurrency)
    # 5. Timeout after authorization: a refused caller costs no timer; it covers the queue
    #    wait and the function's time, what the caller actually waits for here.
    handler = Timeout(handler, parts.request_timeout)
    # 4. Authorization before anything that holds capacity: an unauthorized caller takes
    #    no queue place and no slot.
    handler = Authorize(handler, parts.policies, parts.denials, parts.clock)
    # 3. Tap outside authorization and limits: a tap session sees refusals (403, 503, 504)
    #    with the latency the caller saw, like the metrics below.
    handler = TapRequests(
        handler,
        parts.tap,
        destination=parts.identity,
        revision=parts.revision,
        clock=parts.clock,
        wall_clock=parts.wall_clock,
    )
    # 2. Metrics outermost of the recorded layers: every answer the caller gets is counted
    #    (success rate and latency feed `fn stat`, rollouts and the stats reports).
    handler = RecordResponses(handler, parts.responses, parts.clock)
    # 1. Reserved paths first: the platform's probes are answered by the proxy itself and
    #    are neither counted as load, tapped, authorized by policy nor queued; they still
    #    came over mTLS, so only mesh workloads can probe.
    return AnswerReserved(handler, parts.drain)
