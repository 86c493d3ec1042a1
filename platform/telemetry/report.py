"""A mesh stats report, checked at the boundary (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1,
    2,
    3,
    4,
    5,
    10,
    20,
    30,
    40,
    50,
    100,
    200,
    300,
    400,
    500,
    1000,
    2000,
    3000,
    4000,
    5000,
    10000,
    20000,
    30000,
    40000,
    50000,
)


class ReportError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Report:
    namespace: str
    function: str
    revision: str
    source: str  # the replica (or "activator")
    concurrency: float
    interval: float  # seconds the report covers
    requests: int
    success: int
    failure: int
    latency: dict[float, int] = field(default_factory=dict)  # bucket upper bound (ms) -> count
    tap: tuple[dict[str, Any], ...] = ()


def parse_report(data: Any) -> Report:
    if not isinstance(data, dict):
        raise ReportError("a report must be a JSON object")
    problems: list[str] = []

    def text(name: str, *, key: str | None = None) -> str:
        value = data.get(key or name)
        if not isinstance(value, str) or not value:
            problems.append(f"{key or name}: must be a non-empty string")
            return ""
        return value

    def number(name: str) -> float:
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            problems.append(f"{name}: must be a number >= 0")
            return 0.0
        return float(value)

    latency: dict[float, int] = {}
    raw = data.get("latencyBuckets") or {}
    if not isinstance(raw, dict):
        problems.append("latencyBuckets: must be an object of bucket -> count")
        raw = {}
    for bound, count in raw.items():
        try:
            latency[float(bound)] = int(count)
        except (TypeError, ValueError):
            problems.append(f"latencyBuckets.{bound}: must map a number to a count")
    tap = data.get("tap") or []
    if not isinstance(tap, list) or not all(isinstance(e, dict) for e in tap):
        problems.append("tap: must be a list of events")
        tap = []
    report = Report(
        namespace=text("namespace"),
        function=text("function"),
        revision=text("revision"),
        source=text("replica"),
        concurrency=number("concurrency"),
        interval=number("interval") or 1.0,
        requests=int(number("requests")),
        success=int(number("success")),
        failure=int(number("failure")),
        latency=latency,
        tap=tuple(tap),
    )
    if problems:
        raise ReportError("; ".join(problems))
    return report
