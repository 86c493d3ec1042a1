"""``Admission`` and ``Refused``: what the gateway asks, what the activator answers."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

REFUSAL_STATUSES = (503, 504)


class Refused(Exception):
    """A request was not admitted: answer ``status`` (503 or 504) with ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        if status not in REFUSAL_STATUSES:
            raise ValueError(f"a refusal answers 503 or 504, not {status}")
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Admission(Protocol):
    """The activator, as the gateway sees it."""

    def through(self, namespace: str, revision: str, ready: int) -> bool:
        """Whether a request for ``revision`` goes through admission, given the ``ready``
        replicas the caller's routes show. Called on every request: a look-up, no I/O."""
        ...

    def admit(
        self, namespace: str, function: str, revision: str, concurrency: int
    ) -> AbstractAsyncContextManager[None]:
        """Hold the request until a capacity slot of ``revision`` is free; the slot is
        the caller's until the context exits. Raises ``Refused``."""
        ...
