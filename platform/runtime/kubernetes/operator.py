"""The kopf operator: the controller's driver and the cluster's runtime, fed by kopf.

Run it with ``python -m fnmesh.platform.runtime.kubernetes.operator`` (the chart does),
configured by the environment (``operator_config``).

The controller's side is the one driver ``fn up`` runs (``controller.driver``, assembled
for a cluster by ``runner``): it decides and writes a function's revisions, TrafficSplit
and status, scales retired revisions to zero, deletes those past the revision limit and
steps canary rollouts on the telemetry hub's metrics. kopf feeds it:

- a Function is created, changed, or found at start-up -> the function is reconciled in
  the handler; a failure is raised to kopf, which retries it;
- a Function is deleted, or a revision's Deployment or a Revision changes -> the function
  is queued on the driver's worker (which retries failures after a backoff);
- the driver itself looks again when a rollout step or a retire grace is due, and at
  every function every ``resync_interval`` seconds (a kopf timer would put a finalizer
  on every Function, so deleting one would wait for the operator).

The runtime's side is this module's ``Operator``:

- a Revision is created or found at start-up -> ``ensure_revision``: its Deployment
  (created with the initial replicas; an existing one is patched without touching
  ``spec.replicas``, which the autoscaler owns) and its Service;
- a revision's Deployment changes -> ``observe_deployment``: the Revision's status
  (replica counts, Ready) from the Deployment's; a Deployment deleted while its Revision
  exists is made again;
- a Revision is deleted -> its Deployment and Service are deleted (owner references let
  Kubernetes' garbage collector do the same; this covers clusters and test servers
  without one). 404s count as done.

No finalizers: deleting a Function never waits for the operator. kopf keeps its own
bookkeeping in ``operator.fnmesh.dev/*`` annotations, so status stays the platform's.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import secrets
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import kopf

from fnmesh.platform.model import Revision
from fnmesh.platform.model.errors import ValidationError
from fnmesh.platform.model.resources import LABEL_FUNCTION, LABEL_REVISION
from fnmesh.platform.runtime.kubernetes.apply import (
    DEPLOYMENTS,
    REVISIONS,
    SERVICES,
    Cluster,
)
from fnmesh.platform.runtime.kubernetes.builders import make_deployment, make_service
from fnmesh.platform.runtime.kubernetes.operator_config import OperatorConfig
from fnmesh.platform.runtime.kubernetes.reconcile import (
    initial_replicas,
    revision_status,
    revision_status_patch,
)
from fnmesh.platform.runtime.kubernetes.runner import Controller, Metrics, cluster_controller
from fnmesh.platform.store.errors import StoreError
from fnmesh.platform.store.kubernetes import KubeClient, Resource

log = logging.getLogger("fnmesh.operator")
GROUP, VERSION = "fnmesh.dev", "v1alpha1"
ANNOTATIONS_PREFIX = "operator.fnmesh.dev"


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deleting(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is being deleted (say, in the foreground: its dependents first), so
    nothing of it may be made again."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


class Operator:
    """The controller's driver and the runtime's side of a cluster (see the module).

    Blocking API calls run in threads. The driver reconciles one function at a time,
    whichever event asked for it, so it is the only writer of a Function's status.
    """

    def __init__(
        self,
        cluster: Cluster,
        config: OperatorConfig,
        *,
        controller: Controller | None = None,
        metrics: Metrics | None = None,
        now: Callable[[], str] = _utc_now,
    ) -> None:
        """``controller``: the driver (else assembled by ``runner`` on ``cluster``'s
        client); ``metrics`` replaces the telemetry hub the configuration names."""
        self.cluster = cluster
        self.config = config
        self.controller = controller or cluster_controller(cluster.client, config, metrics=metrics)
        self.now = now

    # -- functions -----------------------------------------------------------------------

    async def reconcile_function(self, namespace: str, name: str) -> None:
        await self.controller.reconcile(namespace, name)

    def function_changed(self, namespace: str, name: str) -> None:
        """Queue the function on the driver's worker (it retries failures itself)."""
        self.controller.enqueue((namespace, name))

    async def start(self) -> None:
        self.controller.start(
            follow=False,
            resync=self.config.resync_interval,
            namespaces=self.config.watch_namespaces,
        )

    async def stop(self) -> None:
        await self.controller.close()

    def _delete(self, resource: Resource, namespace: str, name: str) -> None:
        try:
            self.cluster.delete(resource, namespace, name)
        except StoreError as error:  # e.g. not allowed: the garbage collector has it
            log.info(
                "%s %s/%s left to its owner reference: %s", resource.kind, namespace, name, error
            )

    # -- revisions -----------------------------------------------------------------------

    async def ensure_revision(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(self._ensure_revision, namespace, name)

    def _ensure_revision(self, namespace: str, name: str) -> None:
        raw = self.cluster.get(REVISIONS, namespace, name)
        if raw is None or _deleting(raw):
            return
        revision = Revision.from_dict(raw)
        cfg = self.config.cluster
        deployment = self.cluster.apply(
            make_deployment(revision, cfg),
            create_as=make_deployment(revision, cfg, replicas=initial_replicas(revision)),
        )
        self.cluster.apply(make_service(revision))
        self._write_revision_status(revision, deployment)

    async def observe_deployment(self, namespace: str, deployment: dict[str, Any]) -> None:
        labels = (deployment.get("metadata") or {}).get("labels") or {}
        revision, function = labels.get(LABEL_REVISION), labels.get(LABEL_FUNCTION)
        if not revision or not function:
            return
        await asyncio.to_thread(self._observe, namespace, revision, deployment)
        self.function_changed(namespace, function)

    async def deployment_deleted(self, namespace: str, deployment: dict[str, Any]) -> None:
        """A revision's Deployment went away: made again while the revision exists."""
        revision = ((deployment.get("metadata") or {}).get("labels") or {}).get(LABEL_REVISION)
        if revision:
            await self.ensure_revision(namespace, revision)

    def _observe(self, namespace: str, name: str, deployment: dict[str, Any]) -> None:
        raw = self.cluster.get(REVISIONS, namespace, name)
        if raw is not None:
            self._write_revision_status(Revision.from_dict(raw), deployment)

    def _write_revision_status(self, revision: Revision, deployment: dict[str, Any]) -> None:
        status = revision_status(revision, deployment, self.now())
        if status != revision.status:
            patch = revision_status_patch(status)
            self.cluster.patch_status(REVISIONS, revision.namespace, revision.name, patch)

    async def revision_deleted(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        await asyncio.to_thread(self._revision_deleted, namespace, name)
        function = ((body.get("metadata") or {}).get("labels") or {}).get(LABEL_FUNCTION)
        if function:
            self.function_changed(namespace, function)

    def _revision_deleted(self, namespace: str, name: str) -> None:
        self._delete(DEPLOYMENTS, namespace, name)
        self._delete(SERVICES, namespace, name)
        log.info("revision %s/%s deleted: its Deployment and Service are removed", namespace, name)


# -- kopf ---------------------------------------------------------------------------------


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    """Add the operator's handlers to ``registry`` (login handlers are the caller's)."""

    @kopf.on.startup(registry=registry)
    async def start_the_driver(**_: Any) -> None:
        await operator.start()

    @kopf.on.cleanup(registry=registry)
    async def stop_the_driver(**_: Any) -> None:
        await operator.stop()

    @kopf.on.resume(GROUP, VERSION, "functions", registry=registry)
    @kopf.on.create(GROUP, VERSION, "functions", registry=registry)
    @kopf.on.update(GROUP, VERSION, "functions", registry=registry)
    async def function_changed(*, namespace: str | None, name: str, **_: Any) -> None:
        await _retry_later(operator.reconcile_function(namespace or "default", name))

    @kopf.on.resume(GROUP, VERSION, "revisions", registry=registry)
    @kopf.on.create(GROUP, VERSION, "revisions", registry=registry)
    async def revision_changed(*, namespace: str | None, name: str, **_: Any) -> None:
        await _retry_later(operator.ensure_revision(namespace or "default", name))

    @kopf.on.event(GROUP, VERSION, "functions", registry=registry)
    async def function_event(
        *, event: kopf.RawEvent, namespace: str | None, name: str, **_: Any
    ) -> None:
        if event["type"] == "DELETED":
            operator.function_changed(namespace or "default", name)

    @kopf.on.event(GROUP, VERSION, "revisions", registry=registry)
    async def revision_event(
        *, event: kopf.RawEvent, namespace: str | None, name: str, **_: Any
    ) -> None:
        if event["type"] == "DELETED":
            body = dict(event["object"])
            await operator.revision_deleted(namespace or "default", name, body)

    revision_label = {LABEL_REVISION: kopf.PRESENT}

    @kopf.on.event("apps", "v1", "deployments", labels=revision_label, registry=registry)
    async def deployment_event(*, event: kopf.RawEvent, namespace: str | None, **_: Any) -> None:
        deployment = dict(event["object"])
        if event["type"] == "DELETED":
            await operator.deployment_deleted(namespace or "default", deployment)
        else:
            await operator.observe_deployment(namespace or "default", deployment)


async def _retry_later(step: Coroutine[Any, Any, None]) -> None:
    """Run a reconcile step; API trouble is retried by kopf soon, bad input is not."""
    try:
        await step
    except (StoreError, OSError) as error:  # a Conflict too: read again, try again
        raise kopf.TemporaryError(str(error), delay=1) from error
    except ValueError as error:  # the resource cannot be built into valid objects
        raise kopf.PermanentError(str(error)) from error


def configure(settings: kopf.OperatorSettings) -> kopf.OperatorSettings:
    """kopf's settings for this operator: bookkeeping in annotations, not in status."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATIONS_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATIONS_PREFIX
    )
    settings.persistence.finalizer = f"{ANNOTATIONS_PREFIX}/finalizer"
    settings.execution.default_backoff = 5
    settings.posting.level = logging.WARNING  # Kubernetes events only for trouble
    settings.posting.reporting_component = "fnmesh-operator"
    settings.watching.label_selectors["apps", "v1", "deployments"] = LABEL_REVISION
    return settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # kopf logs every handled event at INFO; fnmesh.operator says what changed
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        config = OperatorConfig.from_env(os.environ)
    except ValidationError as error:
        print(f"fnmesh operator: {error}", file=sys.stderr)
        return 2
    try:
        client = KubeClient.from_environment(timeout=config.request_timeout)
    except StoreError as error:
        print(f"fnmesh operator: {error}", file=sys.stderr)
        return 2
    registry = kopf.OperatorRegistry()
    register(registry, Operator(Cluster(client), config))
    kopf.on.login(registry=registry)(kopf.login_via_client)
    namespaces = list(config.watch_namespaces)
    # The chart's liveness probe asks kopf's health endpoint. With more than one replica
    # the chart names a peering: each replica takes a random priority, so they never tie
    # (kopf pauses every peer of equal priority) and exactly the highest one acts.
    peering = os.environ.get("FNMESH_OPERATOR_PEERING") or None
    kopf.run(
        registry=registry,
        settings=configure(kopf.OperatorSettings()),
        standalone=peering is None,
        peering_name=peering,
        priority=secrets.randbelow(2**31) + 1 if peering else None,
        liveness_endpoint=os.environ.get("FNMESH_OPERATOR_LIVENESS") or None,
        clusterwide=not namespaces,
        namespaces=namespaces,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
