"""The controller's driver, assembled for a cluster (the operator runs it under kopf).

The same ``Controller`` as ``fn up`` runs, behind the cluster's side of each protocol:

- ``Store``: custom resources (``KubernetesStore``; TrafficSplits in the version the
  cluster serves);
- ``Scaler`` and ``Exposure``: ``workloads.Deployments``;
- ``Sizer``: none -- the autoscaler is another process and reads the active revisions off
  the status the controller writes;
- ``Metrics``: the telemetry hub over HTTP when ``FNMESH_TELEMETRY_URL`` is set, else none.

kopf feeds the driver instead of the store's change feed; the driver's own resync looks
at every function every ``resync_interval`` seconds besides.
"""

from __future__ import annotations

from fnmesh.platform.controller.driver import Controller, Metrics
from fnmesh.platform.controller.remote_metrics import RemoteMetrics
from fnmesh.platform.runtime.kubernetes.apply import Cluster
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
from fnmesh.platform.runtime.kubernetes.workloads import Deployments
from fnmesh.platform.store.kubernetes import KubeClient, KubernetesStore, platform_resources

__all__ = ["Controller", "Metrics", "cluster_controller", "configured_metrics"]


def configured_metrics(config: OperatorConfig) -> Metrics | None:
    """The telemetry hub the configuration names, or None (a canary then waits)."""
    if config.telemetry_url is None:
        return None
    return RemoteMetrics(
        config.telemetry_url, timeout=config.request_timeout, ca_file=config.telemetry_ca_file
    )


def cluster_controller(
    client: KubeClient, config: OperatorConfig, *, metrics: Metrics | None = None
) -> Controller:
    """The driver on ``client``'s cluster; ``metrics`` replaces the configured hub."""
    store = KubernetesStore(client, resources=platform_resources(config.cluster.split_api_version))
    workloads = Deployments(Cluster(client), config)
    return Controller(
        store,
        workloads,
        None,
        url_for=config.function_url,
        metrics=metrics if metrics is not None else configured_metrics(config),
        keep_revisions=config.keep_revisions,
        retire_grace=config.retire_grace,
        exposure=workloads,
        blocking_store=True,
    )
