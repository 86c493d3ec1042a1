"""What the API's handlers need, handed over once when the app is built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from fnmesh.platform.api.auth import Tokens
from fnmesh.platform.build import Builder
from fnmesh.platform.deploy import DeployService
from fnmesh.platform.store import Store


class Logs(Protocol):
    """Replica output of a function (the local runtime's LogBook is one)."""

    def tail(self, namespace: str, function: str, lines: int) -> list[str]: ...

    def follow(self, namespace: str, function: str, lines: int) -> AsyncIterator[str]: ...


@dataclass(frozen=True, slots=True)
class ApiDeps:
    store: Store
    tokens: Tokens
    deploy: DeployService
    builder: Builder
    logbook: Logs
    max_bundle_bytes: int


def deps(request: Request) -> ApiDeps:
    found: ApiDeps = request.app.state.deps
    return found
