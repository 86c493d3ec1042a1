"""The outbound side of the mesh: how a request leaves for a destination.

A stack of single-purpose layers (``layers``) assembled in one place (``client.stack``):
metrics, errors as responses, total timeout, retries within a budget, latency-aware
balancing with failure accrual, per-try timeout, and the mTLS connection pool. The
decisions are pure modules given ``now`` and their dice: ``balance`` (P2C over peak
EWMA), ``accrual`` (circuit breaking), ``budget`` (retry budget) and ``retry`` (what may
be retried). ``target`` holds the narrow protocols a caller implements.
"""

from fnmesh.platform.mesh.outbound.accrual import AccrualSpec
from fnmesh.platform.mesh.outbound.budget import BudgetSpec
from fnmesh.platform.mesh.outbound.client import Outbound
from fnmesh.platform.mesh.outbound.retry import RetryPolicy
from fnmesh.platform.mesh.outbound.target import Address, Destination, Endpoint, Settings, Target

__all__ = [
    "AccrualSpec",
    "Address",
    "BudgetSpec",
    "Destination",
    "Endpoint",
    "Outbound",
    "RetryPolicy",
    "Settings",
    "Target",
]
