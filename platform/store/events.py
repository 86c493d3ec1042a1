"""One entry of the change feed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kind: str
    object: dict[str, Any]
    resource_version: int

    @property
    def namespace(self) -> str:
        return str(self.object["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.object["metadata"]["name"])
