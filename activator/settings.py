"""The activator's settings (grouped into the platform's configuration)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActivatorConfig:
    queue_depth: int = 10_000  # requests waiting per revision before 503
    activation_deadline: float = 60.0  # longest a request waits for capacity before 504
    report_interval: float = 1.0
