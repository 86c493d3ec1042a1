"""How identity code reads time: an injected wall clock and an injected sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time as a timezone-aware datetime (certificates speak wall time)."""

Sleep = Callable[[float], Awaitable[None]]
"""Waits the given number of seconds."""


def system_clock() -> datetime:
    return datetime.now(UTC)


async def system_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def require_aware(value: datetime, what: str = "now") -> datetime:
    """Return ``value`` if it carries a timezone; certificates cannot use naive times."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware: use datetime.now(UTC)")
    return value
