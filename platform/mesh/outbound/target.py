"""What the outbound stack asks of its caller: destinations, their endpoints and settings.

Layers ask the destination for the parameters they need (Linkerd's targets): the
current endpoints to balance over, the timeouts, the retry policy and budget, the
failure accrual settings, and the labels its metrics carry. Anything with these
attributes will do; ``Target`` and ``Address`` are plain frozen implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fnmesh.platform.mesh.outbound.accrual import AccrualSpec
from fnmesh.platform.mesh.outbound.budget import BudgetSpec
from fnmesh.platform.mesh.outbound.retry import RetryPolicy


class Endpoint(Protocol):
    """One replica to send to: where it listens and who it must prove to be."""

    @property
    def name(self) -> str: ...  # unique within its destination

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def identity(self) -> str | None: ...  # None: plaintext (no identity to check)


@dataclass(frozen=True, slots=True)
class Settings:
    """How requests to one destination are sent; validated once, when made."""

    timeout: float = 30.0  # seconds for the whole request, all tries included
    per_try_timeout: float | None = None  # seconds for one try; None: the total bounds it
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    accrual: AccrualSpec = field(default_factory=AccrualSpec)
    max_response_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        problems = []
        if not self.timeout > 0:
            problems.append(f"timeout {self.timeout} must be a positive number of seconds")
        if self.per_try_timeout is not None and not self.per_try_timeout > 0:
            problems.append(
                f"per_try_timeout {self.per_try_timeout} must be a positive number of seconds"
                " (or None to let the total timeout bound each try)"
            )
        if self.max_response_bytes < 0:
            problems.append(f"max_response_bytes {self.max_response_bytes} must be 0 or more")
        if problems:
            raise ValueError("outbound settings: " + "; ".join(problems))


class Destination(Protocol):
    """A logical upstream (one revision of a function) and how to reach it."""

    @property
    def name(self) -> str: ...  # unique per destination: keys its state and names it in errors

    @property
    def namespace(self) -> str: ...

    @property
    def function(self) -> str: ...

    @property
    def revision(self) -> str: ...

    @property
    def endpoints(self) -> Sequence[Endpoint]: ...  # the current ready endpoints

    @property
    def settings(self) -> Settings: ...


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    host: str
    port: int
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    namespace: str
    function: str
    revision: str
    endpoints: Sequence[Endpoint] = ()
    settings: Settings = field(default_factory=Settings)
