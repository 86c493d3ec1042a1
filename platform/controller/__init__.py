"""Reconcilers: Function -> Revision -> TrafficSplit, and the replicas each revision needs.

Decisions are pure (the function, its revisions, metric samples and the time in; a plan
out): ``plan`` (revisions to stamp, start, retire and delete; the function's status),
``traffic`` (where requests go), ``rollout`` (the canary analysis), ``commands``
(rollback and promote requests), ``collect`` (old revisions to delete). ``driver`` is the
one driver of both modes: it reads the store, calls ``plan`` and applies the result
through narrow protocols (``Scaler``, ``Sizer``, ``Exposure``, ``Metrics``).
``remote_metrics`` is ``Metrics`` over HTTP, for a telemetry hub in another process.
"""

from fnmesh.platform.controller.driver import Controller, Exposure, Metrics, Scaler, Sizer

__all__ = ["Controller", "Exposure", "Metrics", "Scaler", "Sizer"]
