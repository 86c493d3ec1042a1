"""What goes wrong when certifying workloads."""

from __future__ import annotations


class IdentityError(Exception):
    """Base of every identity failure."""


class IdentityRefused(IdentityError):
    """The identity service will not certify this request; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(IdentityError):
    """A certify request is malformed: ``field`` names the part to fix."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class AuthorityError(IdentityError):
    """The trust anchor or issuer on disk is missing, damaged or expired."""
