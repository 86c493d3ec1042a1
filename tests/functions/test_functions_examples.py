"""The shipped examples and the ``fn init`` template, served by the runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from runtimekit import EXAMPLES, Runtimes

from fnmesh.functions.templates import available, render
from fnmesh.platform.model import parse_manifest


def test_examples_are_plain_folders_with_manifests() -> None:
    for name in ("hello", "echo", "humanize"):
        folder = EXAMPLES / name
        manifest = parse_manifest((folder / "fn.yaml").read_text())
        assert (manifest.name, manifest.spec.handler) == (name, "main:handle")
        assert not (folder / "__init__.py").exists()


def test_hello_greets_by_name(runtimes: Runtimes) -> None:
    runtime = runtimes.start(EXAMPLES / "hello")
    assert runtime.request("GET", "/?name=fnmesh").text == "Hello, fnmesh!\n"
    reply = runtime.request("GET", "/")
    assert (reply.text, reply.headers["content-type"]) == (
        "Hello, world!\n", "text/plain; charset=utf-8",
    )  # fmt: skip


def test_echo_answers_json_with_json_and_bad_json_with_400(runtimes: Runtimes) -> None:
    runtime = runtimes.start(EXAMPLES / "echo")
    reply = runtime.request(
        "POST", "/things?x=1", b'{"a": 1}', {"content-type": "application/json"}
    )
    assert reply.json() == {
        "echo": {"a": 1},
        "method": "POST",
        "path": "/things",
        "query": {"x": "1"},
    }
    bad = runtime.request("POST", "/", b"not json")
    assert bad.status == 400
    assert "not valid JSON" in bad.json()["error"]


def test_humanize_uses_its_dependency(runtimes: Runtimes, tmp_path: Path) -> None:
    site = tmp_path / "site"
    requirements = EXAMPLES / "humanize" / "requirements.txt"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--target", str(site), "-r", str(requirements)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert installed.returncode == 0, f"pip could not install humanize: {installed.stderr[-300:]}"
    runtime = runtimes.start(EXAMPLES / "humanize", "main:handle", "--site", str(site))
    assert runtime.request("GET", "/?bytes=123456").json() == {"natural": "123.5 kB"}
    assert runtime.request("GET", "/?bytes=lots").status == 400


def test_the_template_renders_serves_and_refuses_to_overwrite(
    runtimes: Runtimes, tmp_path: Path
) -> None:
    assert available() == ["python"]
    dest = tmp_path / "greeter"
    written = render("python", "greeter", dest)
    names = sorted(path.relative_to(dest).as_posix() for path in written)
    assert names == [".fnignore", "fn.yaml", "main.py", "requirements.txt"]
    manifest = parse_manifest((dest / "fn.yaml").read_text())
    assert (manifest.name, manifest.spec.handler) == ("greeter", "main:handle")

    runtime = runtimes.start(dest)
    assert runtime.request("GET", "/?name=you").json() == {"message": "Hello, you!"}

    (dest / "main.py").write_text("# mine\n")
    with pytest.raises(FileExistsError, match=r"refusing to overwrite .*main\.py"):
        render("python", "greeter", dest)
    assert (dest / "main.py").read_text() == "# mine\n"


def test_the_template_refuses_a_partial_overwrite_without_writing_anything(
    tmp_path: Path,
) -> None:
    (tmp_path / "fn.yaml").write_text("name: mine\n")
    with pytest.raises(FileExistsError, match=r"fn\.yaml"):
        render("python", "other", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fn.yaml"]


@pytest.mark.parametrize(
    ("template", "name", "message"),
    [("cobol", "ok", "unknown template 'cobol'"), ("python", "Bad_Name", "DNS-1123")],
)
def test_the_template_rejects_bad_input(
    tmp_path: Path, template: str, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render(template, name, tmp_path / "x")
    assert not (tmp_path / "x").exists()
