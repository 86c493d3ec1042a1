"""When certificates are renewed (pure), and the renewal loop on fake time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fnmesh.platform.mesh.identity import RenewalPolicy, Validity
from fnmesh.platform.mesh.identity.renewal import renew_forever

START = datetime(2030, 1, 1, tzinfo=UTC)
DAY = Validity(START, START + timedelta(hours=24))


@pytest.mark.parametrize(
    ("now", "failures", "delay"),
    [
        (START, 0, 0.7 * 24 * 3600),
        (START + timedelta(hours=10), 0, (16.8 - 10) * 3600),
        (START + timedelta(hours=16.8), 0, 0.0),
        (START + timedelta(hours=20), 0, 0.0),  # overdue: at once
        (START + timedelta(hours=30), 0, 0.0),  # expired: at once
        (START + timedelta(hours=17), 1, 1.0),
        (START + timedelta(hours=17), 2, 2.0),
        (START + timedelta(hours=17), 4, 8.0),
        (START + timedelta(hours=17), 20, 60.0),  # capped
    ],
)
def test_delay(now: datetime, failures: int, delay: float) -> None:
    assert RenewalPolicy().delay(DAY, now, failures) == pytest.approx(delay)


def test_renew_at_70_percent() -> None:
    assert RenewalPolicy().renew_at(DAY) == START + timedelta(hours=16.8)
    assert RenewalPolicy(fraction=0.5).renew_at(DAY) == START + timedelta(hours=12)


@pytest.mark.parametrize(
    "arguments",
    [
        {"fraction": 0.0},
        {"fraction": 1.0},
        {"retry_minimum": 0},
        {"retry_minimum": 9, "retry_maximum": 1},
    ],
)
def test_bad_policy_is_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"fraction|retry_minimum"):
        RenewalPolicy(**arguments)


async def test_loop_renews_on_time_and_backs_off_on_failure() -> None:
    now = START
    validity = DAY
    outcomes = [RuntimeError("down"), RuntimeError("still down"), None, None]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal now
        slept.append(seconds)
        if len(slept) > len(outcomes):
            raise asyncio.CancelledError
        now += timedelta(seconds=seconds)

    async def renew() -> None:
        nonlocal validity
        outcome = outcomes[len(slept) - 1]
        if outcome is not None:
            raise outcome
        validity = Validity(now, now + timedelta(hours=24))

    with pytest.raises(asyncio.CancelledError):
        await renew_forever(
            lambda: validity, renew, clock=lambda: now, sleep=sleep, policy=RenewalPolicy()
        )
    hours = 0.7 * 24 * 3600
    assert slept == pytest.approx([hours, 1.0, 2.0, hours, hours])
