"""Reconcilers: Function -> Revision -> TrafficSplit, and the replicas each revision needs.

``plan`` decides (pure: the function, its revisions and the time in, a plan out);
``driver`` reads the store, calls ``plan`` and applies the result.
"""

from fnmesh.platform.controller.driver import Controller, Scaler

__all__ = ["Controller", "Scaler"]
