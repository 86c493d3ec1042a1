from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from git_receiver import Receiver, running_receiver
from gitkit import git_env


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    async with running_receiver(tmp_path / "home") as running:
        yield running


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return git_env(tmp_path / "user")
