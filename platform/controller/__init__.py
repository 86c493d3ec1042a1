"""Reconcilers: Function -> Revision -> TrafficSplit, and the replicas each revision needs.

Decisions are pure (the function, its revisions, metric samples and the time in; a plan
out): ``plan`` (revisions to stamp, start, retire and delete; the function's status),
``traffic`` (where requests go), ``rollout`` (the canary analysis), ``commands``
(rollback and promote requests), ``collect`` (old revisions to delete). ``driver``
reads the store, calls ``plan`` and applies the result.
"""

from fnmesh.platform.controller.driver import Controller, Metrics, Scaler

__all__ = ["Controller", "Metrics", "Scaler"]
