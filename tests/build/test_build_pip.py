"""Real pip against PyPI: one small install (then the cache), one requirement that is not there."""

import asyncio
import sys
from pathlib import Path

import pytest
from buildkit import Lines, function_tar

from fnmesh.platform.build import Builder, BuildFailed


@pytest.mark.slow
async def test_a_real_install_then_a_cache_hit(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build")
    lines = Lines()
    first = await builder.build(
        function_tar(requirements_txt="six==1.16.0\n"), build_id="b1", log=lines
    )
    assert first.env_dir is not None
    assert not first.env_cached
    assert (first.env_dir / "six.py").is_file()
    assert lines.has("pip: Successfully installed six-1.16.0")
    check = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import six; print(six.__version__)",
        env={"PYTHONPATH": str(first.env_dir)},
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await check.communicate()
    assert output.decode().strip() == "1.16.0"

    second = await builder.build(
        function_tar("def handle(req):\n    return 2\n", requirements_txt="six==1.16.0\n"),
        build_id="b2",
    )
    assert second.env_dir == first.env_dir
    assert second.env_cached
    log = second.log_path.read_text()
    assert f"dependencies: cached ({first.env_dir.name})" in log
    assert "pip:" not in log
    print(f"code-only rebuild with cached dependencies: {second.duration_seconds * 1000:.1f} ms")
    assert second.duration_seconds < 5.0


@pytest.mark.slow
async def test_a_requirement_that_does_not_exist(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build")
    with pytest.raises(BuildFailed) as caught:
        await builder.build(
            function_tar(requirements_txt="this-package-does-not-exist-fnmesh==1\n"),
            build_id="b1",
        )
    failure = caught.value
    assert "this-package-does-not-exist-fnmesh" in str(failure)
    assert any("this-package-does-not-exist-fnmesh" in line for line in failure.tail)
    assert list((tmp_path / "build" / "envs").iterdir()) == []
    last = failure.log_path.read_text().splitlines()[-1]
    assert last.startswith("build b1: failed in ")
