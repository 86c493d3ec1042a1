"""Options of ``fn up``, handed to the embedded platform."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class UpOptions:
    """What the command line says about the platform to start; None means "configured"."""

    home: Path
    api_port: int | None = None
    gateway_port: int | None = None
    host: str | None = None
    example: str | None = None
