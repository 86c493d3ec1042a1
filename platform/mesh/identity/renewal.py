"""When to renew a certificate (pure), and the loop that does it.

A certificate is renewed once ``fraction`` (70 %) of its lifetime has passed, as Linkerd's
proxy does: with 24 h certificates that leaves 7 h to get a new one. A failed renewal is
retried with exponential backoff, so an identity service that is down for a while is not
hammered, yet asked again soon after it is back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from fnmesh.platform.mesh.identity.clock import Clock, Sleep

log = logging.getLogger("fnmesh.mesh.identity")


@dataclass(frozen=True, slots=True)
class Validity:
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True, slots=True)
class RenewalPolicy:
    fraction: float = 0.7
    retry_minimum: float = 1.0  # seconds after the first failure
    retry_maximum: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"fraction must be between 0 and 1 (exclusive), not {self.fraction}")
        if not 0.0 < self.retry_minimum <= self.retry_maximum:
            raise ValueError("retry_minimum must be positive and at most retry_maximum")

    def renew_at(self, validity: Validity) -> datetime:
        """The moment ``fraction`` of the certificate's lifetime has passed."""
        lifetime = validity.not_after - validity.not_before
        return validity.not_before + lifetime * self.fraction

    def delay(self, validity: Validity, now: datetime, failures: int = 0) -> float:
        """Seconds to wait before the next attempt, after ``failures`` failed ones in a row."""
        if failures > 0:
            return min(self.retry_maximum, self.retry_minimum * 2.0 ** (failures - 1))
        return max(0.0, (self.renew_at(validity) - now).total_seconds())


DEFAULT_POLICY = RenewalPolicy()


async def renew_forever(
    validity: Callable[[], Validity],
    renew: Callable[[], Awaitable[None]],
    *,
    clock: Clock,
    sleep: Sleep,
    policy: RenewalPolicy,
    what: str = "certificate",
) -> None:
    """Renew whenever ``policy`` says so, until cancelled; failures are logged and retried."""
    failures = 0
    while True:
        await sleep(policy.delay(validity(), clock(), failures))
        try:
            await renew()
        except Exception as error:
            failures += 1
            log.warning("renewing the %s failed (attempt %d): %s", what, failures, error)
        else:
            failures = 0
