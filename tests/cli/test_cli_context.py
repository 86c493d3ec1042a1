import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fake_api import FakeApi, FakeServer
from cli_support import Fn, write_context

from fnmesh.platform.cli.context import find_home, load_context
from fnmesh.platform.cli.errors import CliError
from fnmesh.platform.cli.main import main


def test_home_comes_from_flag_then_environment_then_default() -> None:
    env = {"FNMESH_HOME": "/from/env"}
    assert find_home("/from/flag", env) == Path("/from/flag")
    assert find_home(None, env) == Path("/from/env")
    assert find_home(None, {}) == Path("~/.fnmesh").expanduser()


def test_missing_context_says_how_to_start_a_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "nowhere"
    assert main(["list", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert f"no platform found at {home}: start one with `fn up`" in err
    assert "Traceback" not in err


def test_home_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FNMESH_HOME", str(tmp_path / "env-home"))
    assert main(["list"]) == 1
    assert f"no platform found at {tmp_path / 'env-home'}" in capsys.readouterr().err


def test_broken_context_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "context.json").write_text('{"api": "http://x"}')
    with pytest.raises(CliError, match=r"context.json lacks gateway, token: restart `fn up`"):
        load_context(tmp_path)


def test_connection_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    write_context(tmp_path, url, url)
    assert main(["list", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the platform API at {url}: is `fn up` running?" in err
    assert "Traceback" not in err


def test_refused_token(
    tmp_path: Path, fake: FakeApi, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.url
    write_context(tmp_path, url, url, token="stale")
    assert main(["describe", "hello", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"the token in {tmp_path / 'context.json'} was refused" in err
    assert fake.requests[0].headers["authorization"] == "Bearer stale"


def test_not_found_prints_the_server_message(fn: Fn, capsys: pytest.CaptureFixture[str]) -> None:
    assert fn("describe", "nope") == 1
    assert capsys.readouterr().err == "error: function default/nope not found\n"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "-o", "xml"]) == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["--help"]) == 0


def test_the_command_line_starts_without_heavy_imports() -> None:
    heavy = [
        "yaml",
        "aiohttp",
        "starlette",
        "uvicorn",
        "fnmesh.platform.model",
        "fnmesh.platform.build",
    ]
    code = (
        "import sys; import fnmesh.platform.cli.main as m; m.build_parser(); "
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fnmesh.platform.cli", "list", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "start one with `fn up`" in done.stderr
