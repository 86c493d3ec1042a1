from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from git_receiver import Receiver, running_receiver
from gitkit import git_env
from support.e2e import Platform


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    async with running_receiver(tmp_path / "home") as running:
        yield running


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return git_env(tmp_path / "user")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """`fn up` as a process on a temporary home (as in tests/e2e)."""
    running = Platform(tmp_path / "home")
    running.home.mkdir()
    running.start()
    try:
        yield running
    finally:
        running.stop()
