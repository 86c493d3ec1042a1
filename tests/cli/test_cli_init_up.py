from pathlib import Path

import pytest

from fnmesh.platform.cli.main import main
from fnmesh.platform.cli.options import UpOptions
from fnmesh.platform.model import parse_manifest


def test_init_writes_a_deployable_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "hello"]) == 0
    out = capsys.readouterr().out.splitlines()
    manifest = tmp_path / "hello" / "fn.yaml"
    assert manifest.is_file()
    assert parse_manifest(manifest.read_text()).name == "hello"
    assert out[0] == "Created function hello in hello:"
    assert "  hello/fn.yaml" in out
    assert out[-1] == "Next: cd hello && fn deploy"
    # a second time the folder is there: the template refuses, the CLI says why
    assert main(["init", "hello"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_init_into_another_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "elsewhere" / "fn-one"
    assert main(["init", "one", "--dir", str(dest)]) == 0
    assert parse_manifest((dest / "fn.yaml").read_text()).name == "one"
    assert capsys.readouterr().out.splitlines()[-1] == f"Next: cd {dest} && fn deploy"
    assert main(["init", "two", "--dir", str(tmp_path / "two"), "--template", "cobol"]) == 2


def test_init_refuses_a_bad_name_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "Hello_World"]) == 2
    assert "is not a DNS-1123 label" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_up_hands_its_options_to_the_embedded_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[UpOptions] = []

    def run(options: UpOptions) -> int:
        seen.append(options)
        return 7

    monkeypatch.setattr("fnmesh.platform.embedded.main.run", run)
    monkeypatch.setenv("FNMESH_HOME", str(tmp_path / "env-home"))
    argv = [
        "up",
        "--api-port",
        "0",
        "--gateway-port",
        "9090",
        "--host",
        "::1",
        "--example",
        "hello",
    ]
    assert main(argv) == 7
    assert main(["up", "--home", str(tmp_path / "flag-home")]) == 7
    assert seen == [
        UpOptions(tmp_path / "env-home", 0, 9090, "::1", "hello"),
        UpOptions(tmp_path / "flag-home", None, None, None, None),
    ]
    assert main(["up", "--api-port", "http"]) == 2
