"""Running functions on Kubernetes: CRDs, cluster configuration and desired-state builders.

Everything here is pure: ``crds`` builds the CustomResourceDefinitions from the model's
schema, ``builders`` (with ``labels`` and ``traffic``) turns a Function or Revision and a
``ClusterConfig`` into the Kubernetes objects that should exist. The operator that
applies them is the driver; it does the I/O. (``crds`` is left out of the imports below
so that ``python -m fnmesh.platform.runtime.kubernetes.crds`` runs cleanly.)

The driver's side: ``reconcile`` (pure too) turns the controller's plan and a
Deployment's state into writes; ``apply`` reads and writes cluster objects; ``operator``
is the kopf operator (``python -m fnmesh.platform.runtime.kubernetes.operator``) with its
``operator_config``; ``scaler`` applies the autoscaler's decisions as Deployment scale.
They are imported from their modules, not from here, so the pure parts load without kopf.
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
