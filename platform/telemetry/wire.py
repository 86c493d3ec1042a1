"""The hub's read API on the wire: golden metrics and tap filters as JSON (pure).

Shared by the hub's handler (``reads``) and its clients (``client``), so the two agree
on one shape; ``docs/architecture.md`` ("Telemetry: one plane") lists the routes.
"""

from __future__ import annotations

from typing import Any

from fnmesh.platform.model.names import check_name
from fnmesh.platform.telemetry.tap import TapFilter
from fnmesh.platform.telemetry.windows import Golden

MAX_WINDOW = 600.0


class WireError(ValueError):
    """What the other side sent is not what the read API speaks (the message says why)."""


def golden_to_wire(golden: Golden | None) -> dict[str, Any] | None:
    if golden is None:
        return None
    return {
        "requests": golden.requests,
        "success": golden.success,
        "failure": golden.failure,
        "seconds": golden.seconds,
        "p50Ms": golden.p50_ms,
        "p95Ms": golden.p95_ms,
        "p99Ms": golden.p99_ms,
    }


def golden_from_wire(data: Any) -> Golden | None:
    """The ``golden`` member of a ``GET /v1/golden/...`` answer; WireError when malformed."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise WireError("golden must be an object or null")

    def count(name: str) -> int:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise WireError(f"golden.{name} must be a whole number >= 0, not {value!r}")
        return value

    def number(name: str, *, optional: bool) -> float | None:
        value = data.get(name)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise WireError(f"golden.{name} must be a number >= 0, not {value!r}")
        return float(value)

    seconds = number("seconds", optional=False)
    assert seconds is not None
    return Golden(
        requests=count("requests"),
        success=count("success"),
        failure=count("failure"),
        seconds=seconds,
        p50_ms=number("p50Ms", optional=True),
        p95_ms=number("p95Ms", optional=True),
        p99_ms=number("p99Ms", optional=True),
    )


def parse_window(raw: str | None, default: float = 60.0) -> float:
    """Seconds of a ``window`` query parameter; WireError names the bounds."""
    if raw is None or raw == "":
        return default
    try:
        window = float(raw)
    except ValueError:
        raise WireError(f"window must be a number of seconds, not {raw!r}") from None
    if not 1 <= window <= MAX_WINDOW:
        raise WireError(f"window must be between 1 and {MAX_WINDOW:g} seconds, not {raw!r}")
    return window


def tap_filter_to_wire(tap_filter: TapFilter) -> dict[str, str]:
    out = {
        "namespace": tap_filter.namespace,
        "function": tap_filter.function,
        "revision": tap_filter.revision,
        "method": tap_filter.method,
        "pathPrefix": tap_filter.path_prefix,
    }
    return {key: value for key, value in out.items() if value}


def tap_filter_from_wire(data: Any) -> TapFilter:
    """The filter of a ``POST /v1/taps`` body; WireError names every bad field."""
    if not isinstance(data, dict):
        raise WireError("the body must be a JSON object")
    problems = []
    for field in ("namespace", "function"):
        why = check_name(data.get(field), what=field, limit=63)
        if why:
            problems.append(why)
    optional: dict[str, str | None] = {}
    for field in ("revision", "method", "pathPrefix"):
        value = data.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > 1024):
            problems.append(f"{field} must be a string of at most 1024 characters, or absent")
            value = None
        optional[field] = value or None
    if problems:
        raise WireError("; ".join(problems))
    return TapFilter(
        namespace=str(data["namespace"]),
        function=str(data["function"]),
        revision=optional["revision"],
        method=optional["method"],
        path_prefix=optional["pathPrefix"],
    )
