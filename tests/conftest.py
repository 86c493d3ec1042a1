"""Fixtures every folder of tests may use."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.e2e import Platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """`fn up` as a process on a temporary home, stopped after the test."""
    running = Platform(tmp_path / "home")
    running.home.mkdir()
    running.start()
    try:
        yield running
    finally:
        running.stop()
