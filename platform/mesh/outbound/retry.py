"""Which failed tries may be tried again (pure); the budget and the clock decide the rest.

- A connection that could not be made sent nothing: retried for every method.
- A reset or a timeout (the upstream may have acted on the request), and the configured
  status codes (502, 503 and 504 by default), are retried only for idempotent methods.
- A request whose body is over ``max_body_bytes`` (64 KiB) is never retried: replaying
  large uploads costs more than it saves.
- At most ``max_retries`` retries per request, each going to another endpoint when there
  is one; every retry also needs the destination's retry budget (``budget``) and time
  left before the request's total deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class Failure(Enum):
    """How a try failed without a response."""

    CONNECT = "connect"  # nothing was sent
    RESET = "reset"  # the connection ended before a complete response
    TIMEOUT = "timeout"  # no complete response in time
    PROTOCOL = "protocol"  # the upstream answered something unusable


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    statuses: frozenset[int] = frozenset({502, 503, 504})
    max_retries: int = 2
    max_body_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        problems = []
        if self.max_retries < 0:
            problems.append(f"max_retries {self.max_retries} must be 0 or more")
        if self.max_body_bytes < 0:
            problems.append(f"max_body_bytes {self.max_body_bytes} must be 0 or more")
        bad = sorted(s for s in self.statuses if not 500 <= s <= 599)
        if bad:
            problems.append(f"statuses {bad} are not 5xx codes: only server errors are retried")
        if problems:
            raise ValueError("retry policy: " + "; ".join(problems))

    def retries_failure(self, failure: Failure, method: str, body_size: int) -> bool:
        """Is a try that failed with ``failure`` worth another try?"""
        if body_size > self.max_body_bytes:
            return False
        if failure is Failure.CONNECT:
            return True
        if failure is Failure.PROTOCOL:
            return False
        return method in IDEMPOTENT

    def retries_status(self, status: int, method: str, body_size: int) -> bool:
        """Is a try answered with ``status`` worth another try?"""
        return status in self.statuses and method in IDEMPOTENT and body_size <= self.max_body_bytes


NO_RETRIES = RetryPolicy(max_retries=0)
