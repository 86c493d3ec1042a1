"""The egress settings a proxy is started with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class EgressConfig:
    socket: Path | None  # the Unix socket the runtime calls other functions through
    destinations_url: str  # where to ask where functions are (https://)
    server_identity: str  # identity the destinations endpoint must present
    owner: int = -1  # uid the socket is handed to (the sandboxed runtime's); -1: keep
