import asyncio
import os
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from buildkit import UNSANDBOXED, Entry, FakePip, Lines, function_tar, make_tar, wait_until

from fnmesh.platform.build import (
    Builder,
    BuildFailed,
    BuildLimits,
    BundleError,
    bundle_digest,
    pack,
)
from fnmesh.platform.build.envs import current_interpreter, file_lock
from fnmesh.platform.build.requirements import environment_key, normalize_requirements
from fnmesh.platform.build.seal import seal


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


async def test_a_build_without_requirements(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build")
    result = await builder.build(function_tar(), build_id="b1")
    assert result.build_id == "b1"
    assert result.digest.startswith("sha256:")
    assert len(result.digest) == 71
    assert result.source_dir == tmp_path / "build" / "artifacts" / result.digest[7:]
    assert result.source_dir == builder.artifact_dir(result.digest)
    assert (result.source_dir / "main.py").read_text().startswith("def handle")
    assert result.env_dir is None
    assert not result.env_cached
    assert result.log_path == tmp_path / "build" / "logs" / "b1.log"
    lines = result.log_path.read_text().splitlines()
    assert lines[0].startswith("build b1: 2 files")
    assert f"source: {result.digest} (new artifact)" in lines
    assert "dependencies: none (no requirements.txt)" in lines
    assert lines[-1].startswith("build b1: succeeded in ")
    assert listing(tmp_path / "build" / "tmp") == []


async def test_modes_are_normalized_and_setuid_dropped(tmp_path: Path) -> None:
    data = make_tar(
        [
            Entry("plain.py", b"", mode=0o600),
            Entry("tool.sh", b"#!/bin/sh\n", mode=0o4775),
            Entry("group.sh", b"", mode=0o2710),
            Entry("bin/run", b"", mode=0o100),
            Entry("alias", type=tarfile.SYMTYPE, linkname="tool.sh"),
        ]
    )
    result = await Builder(tmp_path / "build").build(data, build_id="b1")
    modes = {
        name: stat.S_IMODE((result.source_dir / name).stat().st_mode)
        for name in ("plain.py", "tool.sh", "group.sh", "bin/run", "bin")
    }
    assert modes == {
        "plain.py": 0o644,
        "tool.sh": 0o755,
        "group.sh": 0o755,
        "bin/run": 0o755,
        "bin": 0o755,
    }
    assert os.readlink(result.source_dir / "alias") == "tool.sh"


async def test_the_digest_is_over_files_not_the_archive(tmp_path: Path) -> None:
    files = [Entry("main.py", b"x = 1\n"), Entry("pkg/mod.py", b"y = 2\n", mode=0o755)]
    other_form = [
        Entry("./", type=tarfile.DIRTYPE, mode=0o700),
        Entry("./pkg", type=tarfile.DIRTYPE),
        Entry("./pkg/mod.py", b"y = 2\n", mode=0o4711, mtime=12345, uid=1000),
        Entry("./main.py", b"x = 1\n", mode=0o600, mtime=999),
    ]
    builder = Builder(tmp_path / "build")
    first = await builder.build(make_tar(files), build_id="b1")
    second = await builder.build(make_tar(other_form, gz=False), build_id="b2")
    assert first.digest == second.digest == bundle_digest(make_tar(files))
    assert "(unchanged; reusing the artifact)" in second.log_path.read_text()
    not_executable = [files[0], Entry("pkg/mod.py", b"y = 2\n")]
    third = await builder.build(make_tar(not_executable), build_id="b3")
    assert third.digest != first.digest
    # two trees of 3 entries, each with its manifest
    assert len(listing(tmp_path / "build" / "artifacts")) == 2 + 2 * 3 + 2


async def test_a_packed_folder_builds_to_the_same_tree(tmp_path: Path) -> None:
    source = tmp_path / "fn"
    (source / "pkg").mkdir(parents=True)
    (source / "main.py").write_text("import pkg\n")
    (source / "pkg" / "__init__.py").write_text("")
    (source / ".gitignore").write_text("*.tmp\n")
    (source / "junk.tmp").write_text("")
    result = await Builder(tmp_path / "build").build(pack(source), build_id="b1")
    assert listing(result.source_dir) == [".gitignore", "main.py", "pkg", "pkg/__init__.py"]


async def test_a_refused_bundle_writes_nothing(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build")
    before = listing(tmp_path / "build")
    with pytest.raises(BundleError) as caught:
        await builder.build(make_tar([Entry("../evil", b"")]), build_id="b1")
    assert caught.value.member == "../evil"
    strict = Builder(tmp_path / "build", limits=BuildLimits(max_files=1))
    with pytest.raises(BundleError, match=r"build\.max_files"):
        await strict.build(function_tar(), build_id="b2")
    assert listing(tmp_path / "build") == before
    assert not (tmp_path / "evil").exists()


async def test_build_ids_must_be_file_names(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build")
    for bad in ("", "../x", "a/b", ".hidden", "x" * 200):
        with pytest.raises(ValueError, match="build id"):
            await builder.build(function_tar(), build_id=bad)
        with pytest.raises(ValueError, match="build id"):
            builder.log_path(bad)
    assert (
        builder.log_path("b20250101-abc.1_x")
        == tmp_path / "build" / "logs" / "b20250101-abc.1_x.log"
    )


def test_artifact_dir_takes_a_digest(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build")
    hexpart = "ab" * 32
    assert builder.artifact_dir(f"sha256:{hexpart}") == tmp_path / "build" / "artifacts" / hexpart
    for bad in ("sha256:xyz", "md5:" + hexpart, "sha256:" + hexpart.upper(), "../" + hexpart):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            builder.artifact_dir(bad)


def test_leftover_scratch_of_dead_processes_is_cleaned_at_start(tmp_path: Path) -> None:
    tmp = tmp_path / "build" / "tmp"
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = tmp / f"{finished.stdout.strip()}-abc" / "source"
    mine = tmp / f"{os.getpid()}-def"
    stray = tmp / "stray-file"
    dead.mkdir(parents=True)
    (dead / "main.py").write_text("")
    mine.mkdir()
    tmp.joinpath("stray-file").write_text("")
    Builder(tmp_path / "build")
    assert not dead.parent.exists()
    assert not stray.exists()
    assert mine.exists()  # this process is alive: another builder of ours may be using it


async def test_requirements_install_once_then_come_from_the_cache(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    first = await builder.build(function_tar(requirements_txt="alpha\nbeta==1\n"), build_id="b1")
    assert fake_pip.runs == 1
    assert first.env_dir is not None
    assert not first.env_cached
    assert first.env_dir.parent == tmp_path / "build" / "envs"
    assert sorted(p.name for p in first.env_dir.iterdir()) == ["alpha.py", "beta_1.py"]
    log = first.log_path.read_text()
    assert "pip: Collecting alpha" in log
    assert f"dependencies: installed ({first.env_dir.name})" in log

    # a code-only change with the same requirements (comments and spacing do not count)
    started = time.monotonic()
    second = await builder.build(
        function_tar(
            "def handle(req):\n    return 'v2'\n",
            requirements_txt="# deps\r\nalpha   # first\r\n\r\nbeta==1\r\n",
        ),
        build_id="b2",
    )
    elapsed = time.monotonic() - started
    print(f"code-only rebuild: {elapsed * 1000:.1f} ms (reported {second.duration_seconds:.3f} s)")
    assert elapsed < 5.0
    assert fake_pip.runs == 1
    assert second.digest != first.digest
    assert second.env_dir == first.env_dir
    assert second.env_cached
    assert f"dependencies: cached ({first.env_dir.name})" in second.log_path.read_text()
    assert "pip:" not in second.log_path.read_text()

    third = await builder.build(function_tar(requirements_txt="alpha\nbeta==2\n"), build_id="b3")
    assert fake_pip.runs == 2
    assert third.env_dir != first.env_dir


async def test_requirements_that_list_nothing_need_no_environment(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    result = await builder.build(function_tar(requirements_txt="# nothing yet\n\n"), build_id="b1")
    assert result.env_dir is None
    assert fake_pip.runs == 0
    assert "requirements.txt lists nothing" in result.log_path.read_text()


async def test_included_requirement_files_are_part_of_the_key(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)

    def bundle(base: str) -> bytes:
        return make_tar(
            [Entry("requirements.txt", b"-r base.txt\n"), Entry("base.txt", base.encode())]
        )

    first = await builder.build(bundle("alpha\n"), build_id="b1")
    second = await builder.build(bundle("alpha\n# same\n"), build_id="b2")
    third = await builder.build(bundle("gamma\n"), build_id="b3")
    assert first.env_dir == second.env_dir != third.env_dir
    assert fake_pip.runs == 2


async def test_a_failed_install_leaves_no_environment(tmp_path: Path, fake_pip: FakePip) -> None:
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    lines = Lines()
    with pytest.raises(BuildFailed) as caught:
        await builder.build(
            function_tar(requirements_txt="alpha\nfail\n"), build_id="b1", log=lines
        )
    failure = caught.value
    assert failure.build_id == "b1"
    assert failure.log_path == builder.log_path("b1")
    assert "failed (exit status 1)" in str(failure)
    assert "No matching distribution found for fail" in str(failure)
    assert failure.reason == str(failure)
    assert "ERROR: No matching distribution found for fail" in failure.tail
    assert listing(tmp_path / "build" / "envs") == []
    assert listing(tmp_path / "build" / "tmp") == []
    log = failure.log_path.read_text().splitlines()
    assert log[-1].startswith("build b1: failed in ")
    assert "No matching distribution" in log[-1]
    assert lines.lines == log
    # the artifact stays; the next build with the same code tries the install again
    with pytest.raises(BuildFailed):
        await builder.build(function_tar(requirements_txt="alpha\nfail\n"), build_id="b2")
    assert fake_pip.runs == 2


async def test_log_lines_reach_the_callback_while_the_build_runs(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    async def sink(line: str) -> None:
        seen.append(line)
        if line == "pip: Collecting wait-for-go":
            fake_pip.go()  # pip only finishes after the callback has seen this line

    seen: list[str] = []
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    result = await builder.build(
        function_tar(requirements_txt="wait-for-go\n"), build_id="b1", log=sink
    )
    assert seen == result.log_path.read_text().splitlines()
    assert seen.index("pip: Collecting wait-for-go") < seen.index(
        "pip: Successfully installed wait-for-go"
    )


async def test_concurrent_builds_of_one_key_share_one_install(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    first_log, second_log = Lines(), Lines()
    first = asyncio.create_task(
        builder.build(function_tar(requirements_txt="wait-for-go\n"), build_id="b1", log=first_log)
    )
    await wait_until(lambda: first_log.has("pip: Collecting wait-for-go"))
    second = asyncio.create_task(
        builder.build(
            function_tar("X = 2\n", requirements_txt="wait-for-go\n"), build_id="b2", log=second_log
        )
    )
    await wait_until(lambda: second_log.has("source: "))
    await asyncio.sleep(0)
    fake_pip.go()
    one, two = await asyncio.gather(first, second)
    assert fake_pip.runs == 1
    assert one.env_dir == two.env_dir
    assert (one.env_cached, two.env_cached) == (False, True)


async def test_two_builders_on_one_root_share_one_install(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    first_log, second_log = Lines(), Lines()
    a = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    b = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    first = asyncio.create_task(
        a.build(function_tar(requirements_txt="wait-for-go\n"), build_id="b1", log=first_log)
    )
    await wait_until(lambda: first_log.has("pip: Collecting wait-for-go"))
    second = asyncio.create_task(
        b.build(function_tar(requirements_txt="wait-for-go\n"), build_id="b2", log=second_log)
    )
    await wait_until(lambda: second_log.has("dependencies: waiting for another build"))
    fake_pip.go()
    one, two = await asyncio.gather(first, second)
    assert fake_pip.runs == 1
    assert (one.env_cached, two.env_cached) == (False, True)


async def test_an_install_held_by_another_process_is_waited_for(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    text = "alpha\n"
    key = environment_key(normalize_requirements(text), current_interpreter(), ())
    lines = Lines()
    holder_ready = asyncio.Event()
    release = asyncio.Event()

    async def other_process() -> None:
        async def never() -> None:
            raise AssertionError("the lock was free")

        async with file_lock(tmp_path / "build" / "locks" / f"{key}.lock", never):
            holder_ready.set()
            await release.wait()
            (tmp_path / "build" / "envs" / key).mkdir()  # what the other process installed
            seal(tmp_path / "build" / "envs" / key)

    holder = asyncio.create_task(other_process())
    await holder_ready.wait()
    build = asyncio.create_task(
        builder.build(function_tar(requirements_txt=text), build_id="b1", log=lines)
    )
    await wait_until(lambda: lines.has(f"dependencies: waiting for another build installing {key}"))
    release.set()
    result = await build
    await holder
    assert result.env_dir == tmp_path / "build" / "envs" / key
    assert result.env_cached
    assert fake_pip.runs == 0


async def test_a_cancelled_build_stops_pip_and_leaves_nothing_half_done(
    tmp_path: Path, fake_pip: FakePip
) -> None:
    builder = Builder(tmp_path / "build", python=fake_pip.python, sandbox=UNSANDBOXED)
    lines = Lines()
    build = asyncio.create_task(
        builder.build(function_tar(requirements_txt="hang\n"), build_id="b1", log=lines)
    )
    await wait_until(lambda: (fake_pip.state / "pid").exists() and lines.has("Collecting hang"))
    pid = int((fake_pip.state / "pid").read_text())
    build.cancel()
    with pytest.raises(asyncio.CancelledError):
        await build
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert listing(tmp_path / "build" / "envs") == []
    assert listing(tmp_path / "build" / "tmp") == []
    last = builder.log_path("b1").read_text().splitlines()[-1]
    assert last.startswith("build b1: failed in ")
    assert "CancelledError" in last


async def test_a_python_that_cannot_run_fails_the_build(tmp_path: Path) -> None:
    builder = Builder(tmp_path / "build", python=str(tmp_path / "no-such-python"))
    with pytest.raises(BuildFailed, match="cannot run the build's Python"):
        await builder.build(function_tar(requirements_txt="alpha\n"), build_id="b1")
    assert builder.log_path("b1").read_text().splitlines()[-1].startswith("build b1: failed")
