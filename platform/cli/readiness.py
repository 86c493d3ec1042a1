"""Has a deploy's new revision come up? A pure verdict over the Function resource.

After a successful build the API answers with the Function's new ``generation``; the
revision is then stamped and started asynchronously. It is ready when the controller has
observed that generation and the latest ready revision is the latest created one; it has
failed when, for that generation, the Ready condition is False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fnmesh.platform.cli.views import condition, section

State = Literal["waiting", "ready", "failed"]


@dataclass(frozen=True, slots=True)
class Verdict:
    state: State
    revision: str | None = None
    reason: str = ""
    message: str = ""


def verdict(function: Any, generation: int) -> Verdict:
    status = section(function, "status")
    observed = status.get("observedGeneration")
    created = status.get("latestCreatedRevision")
    revision = str(created) if created else None
    if not isinstance(observed, int) or observed < generation:
        return Verdict("waiting", revision)
    if revision and status.get("latestReadyRevision") == revision:
        return Verdict("ready", revision)
    ready = condition(function)
    if ready and ready.get("status") == "False":
        return Verdict(
            "failed",
            revision,
            str(ready.get("reason") or ""),
            str(ready.get("message") or ""),
        )
    return Verdict("waiting", revision)
