"""The git receiver's state: settings, repositories, per-function locks, pushes in flight.

One ``GitService`` per API application. ``service_for(app)`` finds it on the app's state
(``app.state.git``) or makes it, the first time, from the API's dependencies
(``app.state.deps``): repositories under ``<home>/git`` (the builder's root is
``<home>/build``), pushes limited to the build's ``max_bundle_bytes``.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fnmesh.platform.git.gate import ArtifactBuilder, Deployer, Push, PushGate
from fnmesh.platform.git.preview_revisions import PreviewStore
from fnmesh.platform.git.repos import Repositories
from fnmesh.platform.model.access import Grant

READY_TIMEOUT = 120.0


class TokenCheck(Protocol):
    def authenticate(self, secret: str) -> Grant | str:
        """The token's grant when ``secret`` is a valid API token, else why not."""
        ...


class RootedBuilder(ArtifactBuilder, Protocol):
    @property
    def root(self) -> Path: ...


class PlatformDeps(Protocol):
    """What the API hands its handlers (``fnmesh.platform.api.deps.ApiDeps``)."""

    @property
    def store(self) -> PreviewStore: ...

    @property
    def tokens(self) -> TokenCheck: ...

    @property
    def deploy(self) -> Deployer: ...

    @property
    def builder(self) -> RootedBuilder: ...

    @property
    def max_bundle_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class GitSettings:
    root: Path  # the repositories: <root>/<namespace>/<name>.git
    max_push_bytes: int  # a push's request body; larger pushes are refused
    ready_timeout: float = READY_TIMEOUT  # how long a push waits for its revision
    git: str = "git"


class GitService:
    def __init__(
        self, settings: GitSettings, tokens: TokenCheck, repos: Repositories, gate: PushGate
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.repos = repos
        self.gate = gate
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiting: collections.Counter[tuple[str, str]] = collections.Counter()
        self._pushes: dict[str, Push] = {}

    @classmethod
    def create(
        cls,
        settings: GitSettings,
        *,
        tokens: TokenCheck,
        deployer: Deployer,
        builder: ArtifactBuilder,
        functions: PreviewStore,
    ) -> GitService:
        repos = Repositories(settings.root, git=settings.git)
        gate = PushGate(
            repos,
            deployer,
            builder,
            functions,
            scratch=settings.root / ".scratch",
            ready_timeout=settings.ready_timeout,
        )
        return cls(settings, tokens, repos, gate)

    @classmethod
    def from_platform(cls, deps: PlatformDeps, *, root: Path | None = None) -> GitService:
        settings = GitSettings(
            root=root if root is not None else deps.builder.root.parent / "git",
            max_push_bytes=deps.max_bundle_bytes,
        )
        return cls.create(
            settings,
            tokens=deps.tokens,
            deployer=deps.deploy,
            builder=deps.builder,
            functions=deps.store,
        )

    @asynccontextmanager
    async def turn(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """Hold one function's lock: its pushes take turns, each for its whole receive-pack."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] += 1
        try:
            await lock.acquire()
        finally:
            self._waiting[key] -= 1
        try:
            yield
        finally:
            lock.release()

    def waiting(self, key: tuple[str, str]) -> int:
        """How many pushes to the function wait for their turn."""
        return self._waiting[key]

    def open_push(self, push: Push) -> str:
        """Register a push; the secret lets its pre-receive hook call back once."""
        secret = secrets.token_urlsafe(32)
        self._pushes[secret] = push
        return secret

    def take_push(self, secret: str) -> Push | None:
        """The push a hook's secret belongs to; a secret works once."""
        return self._pushes.pop(secret, None)

    def close_push(self, secret: str) -> None:
        self._pushes.pop(secret, None)


def service_for(app: Any) -> GitService:
    """The app's git service, made from its API dependencies on first use."""
    state = app.state
    found = getattr(state, "git", None)
    if isinstance(found, GitService):
        return found
    service = GitService.from_platform(state.deps)
    state.git = service
    return service
