"""What the API's handlers need, handed over once when the app is built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.build import Builder
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.store import SecretStore, Store
from fnmesh.platform.supervise import TaskBoard
from fnmesh.platform.telemetry.reader import TelemetryReader


class Logs(Protocol):
    """Replica output of a function (the local runtime's LogBook is one)."""

    def tail(self, namespace: str, function: str, lines: int) -> list[str]: ...

    def follow(self, namespace: str, function: str, lines: int) -> AsyncIterator[str]: ...


# Golden metrics and tap sessions: the hub in this process, or a client of its read API.
Telemetry = TelemetryReader


@dataclass(frozen=True, slots=True)
class ApiDeps:
    store: Store
    tokens: Tokens
    deploy: DeployService
    builder: Builder
    logbook: Logs
    max_bundle_bytes: int
    telemetry: Telemetry | None = None
    metrics: CollectorRegistry | None = None  # the platform's own, served at GET /metrics
    secrets: SecretStore | None = None  # where function secrets live (values never leave)
    resources: ResourcePolicy | None = None  # maximums a Function's resources must keep to
    tasks: TaskBoard | None = None  # the background tasks /healthz reports on


def deps(request: Request) -> ApiDeps:
    found: ApiDeps = request.app.state.deps
    return found
