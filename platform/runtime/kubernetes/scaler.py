"""The autoscaler's ``Scaler`` on Kubernetes: a decision becomes a Deployment's scale.

``scale`` patches ``deployments/<revision>/scale`` (the subresource the chart lets the
autoscaler patch, and nothing else of the Deployment). The blocking call runs in a
thread. A revision whose Deployment does not exist yet is skipped: the operator creates
it with the revision's initial scale.
"""

from __future__ import annotations

import asyncio
import logging

from fnmesh.platform.model import Revision
from fnmesh.platform.runtime.kubernetes.apply import DEPLOYMENTS, MERGE_PATCH
from fnmesh.platform.store.errors import NotFound
from fnmesh.platform.store.kubernetes import KubeClient

log = logging.getLogger("fnmesh.runtime.kubernetes")


class KubernetesScaler:
    """Implements the autoscaler's ``Scaler`` protocol with the Deployment scale API."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def scale(
        self,
        revision: Revision,
        replicas: int,
        *,
        panic: bool | None = None,
        reason: str | None = None,
    ) -> None:
        """Set the Deployment's replicas. ``panic`` and ``reason`` (the decision's details,
        which the embedded runtime shows in the revision's status) are not recorded here."""
        if replicas < 0:
            raise ValueError(f"replicas must be 0 or more, not {replicas}")
        await asyncio.to_thread(self._scale, revision.namespace, revision.name, replicas)

    def _scale(self, namespace: str, name: str, replicas: int) -> None:
        path = DEPLOYMENTS.path(namespace, name, "scale")
        body = {"spec": {"replicas": replicas}}
        try:
            self.client.request("PATCH", path, body=body, content_type=MERGE_PATCH)
        except NotFound:
            log.info("%s/%s has no Deployment yet; not scaled to %d", namespace, name, replicas)
