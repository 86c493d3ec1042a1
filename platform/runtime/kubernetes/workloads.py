"""Where replicas run on a cluster: the controller's ``Scaler`` and ``Exposure`` as
Deployments and the objects a function needs around them.

- ``scale(revision, 0)`` (a revision past its retire grace) sets its Deployment's
  replicas to zero, once; the controller never sizes a revision up here (the autoscaler
  does, through ``deployments/scale``), and a missing Deployment is left missing.
- ``remove`` (a revision being deleted) scales it to zero at once; the Deployment and
  Service follow the Revision object: owner references let Kubernetes' garbage collector
  delete them, and the operator's Revision-deleted handler does where none runs. Deleting
  them here, before the Revision, would race the handler that makes a missing Deployment
  again while its Revision exists.
- ``expose`` applies the function's account, apex Service and access policy
  (``reconcile.function_objects``); ``withdraw`` deletes them once the function is gone
  (the account only when it carries the function's label: one named in
  ``spec.serviceAccount`` is not the platform's).

Calls block (HTTP to the API server), so each runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging

from fnmesh.platform.model import Function, Revision
from fnmesh.platform.model.resources import LABEL_FUNCTION
from fnmesh.platform.runtime.kubernetes.apply import DEPLOYMENTS, Cluster, resource_for
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
from fnmesh.platform.runtime.kubernetes.reconcile import exposed_objects, function_objects
from fnmesh.platform.store.errors import StoreError

log = logging.getLogger("fnmesh.operator")


class Deployments:
    """Implements the controller's ``Scaler`` and ``Exposure`` on a cluster."""

    def __init__(self, cluster: Cluster, config: OperatorConfig) -> None:
        self.cluster = cluster
        self.config = config

    async def scale(self, revision: Revision, replicas: int) -> None:
        if replicas < 0:
            raise ValueError(f"replicas must be 0 or more, not {replicas}")
        await asyncio.to_thread(self._scale, revision.namespace, revision.name, replicas)

    def _scale(self, namespace: str, name: str, replicas: int) -> None:
        deployment = self.cluster.get(DEPLOYMENTS, namespace, name)
        if deployment is None or (deployment.get("spec") or {}).get("replicas") == replicas:
            return
        log.info("revision %s/%s: scaling its Deployment to %d", namespace, name, replicas)
        self.cluster.set_replicas(namespace, name, replicas)

    async def remove(self, namespace: str, revision: str) -> None:
        await asyncio.to_thread(self._scale, namespace, revision, 0)

    async def expose(self, function: Function) -> None:
        await asyncio.to_thread(self._expose, function)

    def _expose(self, function: Function) -> None:
        allowed = self.config.allowed(function.spec.visibility)
        for obj in function_objects(function, allowed):
            self.cluster.apply(obj)

    async def withdraw(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(self._withdraw, namespace, name)

    def _withdraw(self, namespace: str, name: str) -> None:
        for api_version, kind, child in exposed_objects(name):
            resource = resource_for(api_version, kind)
            if kind == "ServiceAccount":
                found = self.cluster.get(resource, namespace, child)
                labels = ((found or {}).get("metadata") or {}).get("labels") or {}
                if labels.get(LABEL_FUNCTION) != name:
                    continue
            try:
                self.cluster.delete(resource, namespace, child)
            except StoreError as error:  # e.g. not allowed: the garbage collector has it
                log.info("%s %s/%s left to its owner reference: %s", kind, namespace, child, error)
        log.info("function %s/%s deleted: its objects are removed", namespace, name)
