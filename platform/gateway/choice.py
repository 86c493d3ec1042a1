"""Picking a revision by its weight and a replica among the ready ones (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def pick_weighted(backends: Sequence[tuple[str, int]], roll: float) -> str | None:
    """The backend whose cumulative weight covers ``roll`` in [0, 1)."""
    total = sum(weight for _, weight in backends if weight > 0)
    if total <= 0:
        return None
    point = roll * total
    for name, weight in backends:
        if weight <= 0:
            continue
        if point < weight:
            return name
        point -= weight
    return next(name for name, weight in reversed(backends) if weight > 0)
