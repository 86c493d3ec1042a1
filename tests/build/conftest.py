from pathlib import Path

import pytest
from buildkit import FakePip, make_fake_pip


@pytest.fixture
def fake_pip(tmp_path: Path) -> FakePip:
    return make_fake_pip(tmp_path / "fake-pip")
