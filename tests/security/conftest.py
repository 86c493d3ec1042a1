from collections.abc import Iterator
from pathlib import Path

import pytest
from support.e2e import Platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path / "home")
    running.home.mkdir()
    running.start()
    try:
        yield running
    finally:
        running.stop()
