"""``fn up`` through the entry-point shell, as a real process: what stops a start, and what
it says; a start that failed half way leaves the home free for the next one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.e2e import Platform, http

pytestmark = pytest.mark.e2e


def up(
    home: Path, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fnmesh.platform.cli", "up", "--home", str(home), *options],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_a_bad_configuration_is_named_whole_and_nothing_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("listen: {api_port: 70000}\ngateway: {max_body_bytes: -1}\n")
    done = up(home, env={"FNMESH_LOG_LEVEL": "loud"})
    assert done.returncode == 2, done.stderr
    assert "listen.api_port" in done.stderr and "gateway.max_body_bytes" in done.stderr
    assert "fn up: FNMESH_LOG_LEVEL: must be one of" in done.stderr
    assert sorted(p.name for p in home.iterdir()) == ["config.yaml"]  # nothing started
    assert done.stdout == ""


def test_a_held_home_is_refused_naming_its_holder(tmp_path: Path) -> None:
    platform = Platform(tmp_path / "home")
    platform.home.mkdir()
    platform.start()
    try:
        context = platform.context
        done = up(platform.home, "--api-port", "0", "--gateway-port", "0")
        assert done.returncode == 1, done.stderr
        pid = platform.process.pid if platform.process else 0
        assert done.stderr.strip() == (
            f"fn up: a platform is already running in {platform.home} (pid {pid}): "
            "stop it, or use another --home"
        )
        assert platform.context == context  # the running platform's context is untouched
        assert http("GET", platform.api + "/healthz").status == 200
    finally:
        assert platform.stop() == 0


def test_a_taken_port_stops_the_start_and_the_next_start_works(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = up(home, "--api-port", "0", "--gateway-port", str(port), "--host", "127.0.0.1")
    assert done.returncode == 1, done.stderr
    assert f"fn up: cannot listen on 127.0.0.1:{port}: " in done.stderr
    assert "choose another port (0 picks a free one)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (home / "context.json").exists()
    platform = Platform(home)  # what the failed start began was stopped: the home is free
    platform.start()
    assert platform.stop() == 0
