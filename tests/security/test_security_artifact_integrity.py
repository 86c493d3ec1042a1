"""A stored artifact that changed after its build is never reused; the runtime's check says so."""

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from buildkit_env import make_env_pip
from securitykit import bundle, function

from fnmesh.platform.build import (
    Builder,
    BuildFailed,
    SandboxSettings,
    TreeTampered,
    verify_artifact,
)
from fnmesh.platform.build.seal import TreeVerifier, manifest_path

MAIN = "def handle(req):\n    return 'hello'\n"


async def served(artifact: Path) -> str:
    """What the artifact's handler answers, imported in a fresh interpreter."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import main; print(main.handle(None))",
        cwd=artifact,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    return output.decode().strip()


async def test_a_tampered_artifact_is_rebuilt_on_redeploy_and_serves_the_right_code(
    tmp_path: Path,
) -> None:
    builder = Builder(tmp_path / "build")
    first = await builder.build(function(MAIN), build_id="b1")
    artifact = first.source_dir
    verify_artifact(artifact, first.digest)
    assert await served(artifact) == "hello"

    # someone appends to the artifact (and restores its size-independent clues: the mtime)
    main = artifact / "main.py"
    before = main.stat()
    with main.open("a") as out:
        out.write("def handle(req):\n    return 'PWNED'\n")
    os.utime(main, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert await served(artifact) == "PWNED"
    with pytest.raises(TreeTampered, match=r"'main\.py' was changed after the build"):
        verify_artifact(artifact, first.digest)

    again = await builder.build(function(MAIN), build_id="b2")
    assert again.digest == first.digest
    assert again.source_dir == artifact
    log = again.log_path.read_text()
    assert "source: the stored artifact failed its check" in log
    assert "'main.py' was changed after the build" in log
    assert await served(artifact) == "hello"
    verify_artifact(artifact, first.digest)
    assert list((tmp_path / "build" / "tmp").iterdir()) == []

    # an intact artifact is reused as before
    third = await builder.build(function(MAIN), build_id="b3")
    assert "(unchanged; reusing the artifact)" in third.log_path.read_text()


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        (lambda a: (a / "extra.py").write_text("X = 1\n"), "'extra.py' was added"),
        (lambda a: (a / "main.py").unlink(), "'main.py' is missing"),
        (lambda a: (a / "main.py").chmod(0o666), "writable by others"),
        (lambda a: (a / "main.py").chmod(0o755), "has mode 0o755, not 0o644"),
        (lambda a: os.chown(a / "main.py", 12345, 12345), "owned by uid 12345"),
        (lambda a: manifest_path(a).unlink(), "it was not sealed"),
        (lambda a: manifest_path(a).write_text("{}"), "manifest"),
        (lambda a: a.chmod(0o777), "writable by others"),
    ],
)
async def test_the_check_names_what_changed(
    tmp_path: Path, tamper: Callable[[Path], object], words: str
) -> None:
    built = await Builder(tmp_path / "build").build(function(MAIN), build_id="b1")
    verify_artifact(built.source_dir, built.digest)
    tamper(built.source_dir)
    with pytest.raises(TreeTampered) as caught:
        verify_artifact(built.source_dir, built.digest)
    assert words in str(caught.value)


async def test_the_check_refuses_another_digest_and_a_forged_manifest(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build")
    one = await builder.build(function(MAIN), build_id="b1")
    two = await builder.build(function("def handle(req):\n    return 2\n"), build_id="b2")
    with pytest.raises(TreeTampered, match="is not where the artifact"):
        verify_artifact(one.source_dir, two.digest)
    # a manifest copied from another artifact does not describe this one
    manifest_path(one.source_dir).write_bytes(manifest_path(two.source_dir).read_bytes())
    with pytest.raises(TreeTampered):
        verify_artifact(one.source_dir, one.digest)


async def test_a_repeated_check_reads_no_file_until_something_changes(tmp_path: Path) -> None:
    built = await Builder(tmp_path / "build").build(function(MAIN), build_id="b1")
    verifier = TreeVerifier()
    verifier.verify(built.source_dir, built.digest)
    assert verifier.full_checks == 1
    for _ in range(5):
        verifier.verify(built.source_dir, built.digest)
    assert verifier.full_checks == 1
    # same size, same mtime, different bytes: the ctime gives it away
    main = built.source_dir / "main.py"
    before = main.stat()
    main.write_text(MAIN.replace("hello", "PWNED"))
    os.utime(main, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert main.stat().st_size == before.st_size
    with pytest.raises(TreeTampered, match="changed after the build"):
        verifier.verify(built.source_dir, built.digest)
    assert verifier.full_checks == 2


async def test_a_tampered_environment_is_installed_again(tmp_path: Path) -> None:
    pip = make_env_pip(tmp_path / "pip")
    builder = Builder(tmp_path / "build", python=pip, sandbox=SandboxSettings(run_as=None))
    first = await builder.build(function(MAIN, "alpha\n"), build_id="b1")
    assert first.env_dir is not None
    (first.env_dir / "alpha.py").write_text("PWNED = True\n")
    second = await builder.build(function(MAIN, "alpha\n"), build_id="b2")
    assert second.env_dir == first.env_dir
    assert not second.env_cached
    assert "the cached environment failed its check" in second.log_path.read_text()
    assert (second.env_dir / "alpha.py").read_text() == "VERSION = 1\n"


async def test_a_refused_requirements_file_fails_the_build_before_pip_runs(
    tmp_path: Path,
) -> None:
    pip = make_env_pip(tmp_path / "pip")
    builder = Builder(tmp_path / "build", python=pip, sandbox=SandboxSettings(run_as=None))
    files = {
        "fn.yaml": "name: hello\nhandler: main:handle\n",
        "main.py": MAIN,
        "requirements.txt": "six\n-r sub/base.txt\n-e .\n",
        "sub/base.txt": "# shared\nalpha\n--extra-index-url https://evil.example/simple\n",
    }
    with pytest.raises(BuildFailed) as caught:
        await builder.build(bundle(files), build_id="b1")
    message = str(caught.value)
    assert "requirements.txt line 3: editable installs (-e) are not allowed" in message
    assert "sub/base.txt line 3: --extra-index-url is not allowed" in message
    log = builder.log_path("b1").read_text()
    assert "dependencies: refused: requirements.txt line 3" in log
    assert "pip:" not in log
    assert list((tmp_path / "build" / "envs").iterdir()) == []
