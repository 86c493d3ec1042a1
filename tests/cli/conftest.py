from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_fake_api import FakeApi, FakeServer
from cli_support import Fn, write_context

from fnmesh.platform.cli.main import main


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def server(fake: FakeApi) -> Iterator[FakeServer]:
    running = FakeServer(fake)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def home(tmp_path: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FNMESH_HOME", raising=False)
    folder = tmp_path / "home"
    write_context(folder, server.url, server.url)
    return folder


@pytest.fixture
def fn(home: Path) -> Fn:
    """Run ``fn ARGS... --home HOME`` in this process; return the exit code."""

    def run(*args: str) -> int:
        return main([*args, "--home", str(home)])

    return run
