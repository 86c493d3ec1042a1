"""Running functions on Kubernetes: CRDs, cluster configuration and desired-state builders.

Everything here is pure: ``crds`` builds the CustomResourceDefinitions from the model's
schema, ``builders`` (with ``labels`` and ``traffic``) turns a Function or Revision and a
``ClusterConfig`` into the Kubernetes objects that should exist. The operator that
applies them is the driver; it does the I/O. (``crds`` is left out of the imports below
so that ``python -m fnmesh.platform.runtime.kubernetes.crds`` runs cleanly.)
"""

from fnmesh.platform.runtime.kubernetes.builders import (
    make_deployment,
    make_http_route_group,
    make_root_service,
    make_service,
    make_service_account,
    make_traffic_split,
    make_traffic_target,
)
from fnmesh.platform.runtime.kubernetes.config import ClusterConfig

__all__ = [
    "ClusterConfig",
    "make_deployment",
    "make_http_route_group",
    "make_root_service",
    "make_service",
    "make_service_account",
    "make_traffic_split",
    "make_traffic_target",
]
