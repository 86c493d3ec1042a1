"""Options of ``fn up``, handed to the platform it starts (embedded, or the API of a cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Backend = Literal["embedded", "kubernetes"]
BACKENDS: tuple[Backend, ...] = ("embedded", "kubernetes")


@dataclass(frozen=True, slots=True)
class UpOptions:
    """What the command line says about the platform to start; None means "configured"."""

    home: Path
    api_port: int | None = None
    gateway_port: int | None = None
    host: str | None = None
    example: str | None = None
    backend: Backend = "embedded"  # kubernetes: the API here, resources in the kubeconfig's cluster
    unsafe_no_sandbox: bool = False  # run replicas unconfined (hosts without namespaces)
