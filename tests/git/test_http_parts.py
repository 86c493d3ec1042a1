"""The receiver's small HTTP parts: basic auth, paths below the mount, CGI answers, the hook."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from fnmesh.platform.git import pre_receive
from fnmesh.platform.git.app import basic_password, hook_url, route_path
from fnmesh.platform.git.backend import parse_cgi_head


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "password"),
    [
        (basic("fn:fnm_secret"), "fnm_secret"),
        (basic("anyone:a:b"), "a:b"),
        (basic("fn:"), None),
        (basic("no-colon"), None),
        ("Bearer fnm_secret", None),
        ("Basic !!!", None),
        ("", None),
    ],
)
def test_basic_password(header: str, password: str | None) -> None:
    assert basic_password(header) == password


def test_paths_below_the_mount() -> None:
    scope = {"path": "/git/hello.git/info/refs", "root_path": "/git"}
    assert route_path(scope) == "/hello.git/info/refs"
    assert route_path({"path": "/gitx/a.git", "root_path": "/git"}) == "/gitx/a.git"
    assert route_path({"path": "/hello.git/info/refs"}) == "/hello.git/info/refs"


def test_the_hook_calls_back_on_the_address_the_push_came_in_on() -> None:
    scope = {"server": ("127.0.0.1", 8081), "scheme": "http", "root_path": "/git"}
    assert hook_url(scope) == "http://127.0.0.1:8081/git/-/pre-receive"
    assert hook_url({**scope, "server": ("::1", 9)}) == "http://[::1]:9/git/-/pre-receive"


def test_cgi_heads() -> None:
    status, headers, rest = parse_cgi_head(
        b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nRepository not found."
    )
    assert (status, headers, rest) == (
        404,
        [(b"content-type", b"text/plain")],
        b"Repository not found.",
    )
    status, headers, rest = parse_cgi_head(b"Content-Type: x\n\n001e# service")
    assert (status, headers, rest) == (200, [(b"content-type", b"x")], b"001e# service")


def test_the_hook_relays_lines_and_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    answer = [
        json.dumps({"line": "building"}).encode() + b"\n",
        b"not json\n",
        json.dumps({"line": "done"}).encode() + b"\n",
        json.dumps({"ok": True}).encode() + b"\n",
    ]
    assert pre_receive.relay(answer) is True
    assert capsys.readouterr().out == "building\ndone\n"
    assert pre_receive.relay([json.dumps({"ok": False}).encode()]) is False
    assert pre_receive.relay([json.dumps({"line": "half"}).encode()]) is False
    assert "stopped answering" in capsys.readouterr().out
    assert pre_receive.read_updates(["a b refs/heads/main\n", "junk\n"]) == [
        {"old": "a", "new": "b", "ref": "refs/heads/main"}
    ]


def test_the_hook_without_a_platform_refuses_with_a_reason() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, str(pre_receive.__file__)],
        input="",
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert "fn git-remote" in done.stdout
    unreachable = {
        **env,
        pre_receive.URL_ENV: "http://127.0.0.1:9/git/-/pre-receive",
        pre_receive.SECRET_ENV: "s",
    }
    done = subprocess.run(
        [sys.executable, str(pre_receive.__file__)],
        input=f"{'0' * 40} {'a' * 40} refs/heads/main\n",
        capture_output=True,
        text=True,
        env=unreachable,
    )
    assert done.returncode == 1
    assert "cannot reach the platform" in done.stdout
