"""How results are shown: aligned tables, ``-o json`` / ``-o yaml``, ages and sizes.

Pure formatting: callers pass the current time in; nothing here reads the clock or prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

FORMATS = ("table", "json", "yaml")
GAP = "   "
NONE = "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> str:
    """Columns aligned to their widest cell, kubectl style; the last column is not padded."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [value.ljust(widths[i]) for i, value in enumerate(row[:-1])] + [row[-1]]
        lines.append(indent + GAP.join(padded).rstrip())
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, object]], indent: str = "") -> str:
    """``Label:  value`` lines with the values aligned."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return "\n".join(
        f"{indent}{(label + ':').ljust(width)}  {_cell(value)}" for label, value in pairs
    )


def _cell(value: object) -> str:
    if value is None or value == "":
        return NONE
    return str(value)


def render(data: Any, fmt: str) -> str:
    """``data`` as JSON or YAML (the output of ``-o json`` / ``-o yaml``)."""
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "yaml":
        import yaml  # only when asked for: the CLI starts without it

        return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False)).rstrip("\n")
    raise ValueError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(timestamp: object, now: datetime) -> str:
    """How long ago ``timestamp`` was, kubectl style: ``45s``, ``12m``, ``3h``, ``5d``."""
    then = parse_time(timestamp)
    if then is None:
        return NONE
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def size(count: int) -> str:
    """A byte count for people: ``512 B``, ``3.4 kB``, ``12.0 MB``."""
    if count < 1000:
        return f"{count} B"
    value = float(count)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def seconds(value: object) -> str:
    """A duration in seconds as fn.yaml writes it: ``30s``, ``500ms``, ``2m``."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return NONE
    if value < 1:
        return f"{value * 1000:g}ms"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"
