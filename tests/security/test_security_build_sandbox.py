"""pip runs as the build user, with nothing of the platform's: environment, files, time."""

import asyncio
import os
import stat
from pathlib import Path

import pytest
from securitykit import function, make_reporting_pip, open_folder, require_root_and_system_python

from fnmesh.platform.build import Builder, BuildFailed
from fnmesh.platform.build.sandbox import (
    FALLBACK_ID,
    BuildUser,
    SandboxSettings,
    default_build_user,
    pip_environment,
)

USER = BuildUser(FALLBACK_ID, FALLBACK_ID, "the build user")


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)

    def find(self, prefix: str) -> str:
        found = [line for line in self.lines if line.startswith(prefix)]
        assert found, f"no line starts with {prefix!r} in {self.lines}"
        return found[0]


async def test_pip_runs_as_the_build_user_with_a_cleared_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_root_and_system_python()
    monkeypatch.setenv("FNMESH_API_TOKEN", "secret-token")
    monkeypatch.setenv("HTTPS_PROXY", "http://user:password@proxy.example:3128")
    with open_folder() as folder:
        home = folder / "home"  # a platform home someone left 0755
        home.mkdir(mode=0o755)
        (home / "state.db").write_text("tokens")
        root = home / "build"
        first = Builder(root, sandbox=SandboxSettings(run_as=None))
        victim = await first.build(function("def handle(req):\n    return 'v1'\n"), build_id="b0")
        victim_main = victim.source_dir / "main.py"
        python = make_reporting_pip(
            folder, probes=[str(home), str(root), str(root / "artifacts")], pokes=[str(victim_main)]
        )
        settings = SandboxSettings(run_as=USER, pip_env={"PIP_INDEX_URL": "https://pypi.example"})
        builder = Builder(root, python=python, sandbox=settings)
        lines = Lines()
        result = await builder.build(
            function("def handle(req):\n    return 'v2'\n", "alpha\n"), build_id="b1", log=lines
        )

        assert lines.find("pip: uid") == f"pip: uid {FALLBACK_ID} gid {FALLBACK_ID} groups []"
        env = set(lines.find("pip: env").split()[2:])
        assert env == {
            "HOME",
            "LANG",
            "LC_CTYPE",  # set by Python itself from LANG
            "PATH",
            "PIP_DISABLE_PIP_VERSION_CHECK",
            "PIP_INDEX_URL",
            "PIP_NO_INPUT",
            "PYTHONNOUSERSITE",
            "PYTHONUNBUFFERED",
            "TMPDIR",
        } - ({"LC_CTYPE"} - env)
        cwd = lines.find("pip: cwd").split()[2]
        assert cwd.startswith("/tmp/fnmesh-build-") and cwd.endswith("/src")
        assert not cwd.startswith(str(home))
        assert lines.find("pip: home").split()[2] == cwd.removesuffix("/src") + "/home"
        # the builder's root is 0700 whatever the home's mode is
        assert f"pip: listed {home}" in lines.lines
        assert f"pip: cannot list {root} PermissionError" in lines.lines
        assert f"pip: cannot list {root / 'artifacts'} PermissionError" in lines.lines
        assert f"pip: cannot write {victim_main} PermissionError" in lines.lines
        assert victim_main.read_text() == "def handle(req):\n    return 'v1'\n"
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert any(f"pip runs as the build user (uid {FALLBACK_ID}" in line for line in lines.lines)
        assert not Path(cwd).parent.exists()  # the workspace is gone

        # what pip made now belongs to the platform and nobody can write it
        assert result.env_dir is not None
        for path in [result.env_dir, *result.env_dir.rglob("*")]:
            info = path.lstat()
            assert info.st_uid == os.geteuid(), path
            assert not info.st_mode & 0o022, path
        assert stat.S_IMODE(result.env_dir.stat().st_mode) == 0o755
        assert stat.S_IMODE((result.env_dir / "alpha.py").stat().st_mode) == 0o644


async def test_the_build_deadline_kills_pip_and_everything_it_started() -> None:
    require_root_and_system_python()
    with open_folder() as folder:
        python = make_reporting_pip(folder, probes=[], pokes=[])
        settings = SandboxSettings(run_as=USER, timeout_seconds=2.0)
        builder = Builder(folder / "build", python=python, sandbox=settings)
        lines = Lines()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(
            BuildFailed, match=r"did not finish within 2s \(build.timeout_seconds\)"
        ):
            await builder.build(function("X = 1\n", "hang\n"), build_id="b1", log=lines)
        assert loop.time() - started < 15
        child = int(lines.find("pip: child").split()[2])
        deadline = loop.time() + 10
        while _alive(child):
            assert loop.time() < deadline, f"pip's child {child} outlived the build"
            await asyncio.sleep(0.05)
        assert list((folder / "build" / "envs").iterdir()) == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_pip_output_in_the_log_is_bounded() -> None:
    require_root_and_system_python()
    with open_folder() as folder:
        python = make_reporting_pip(folder, probes=[], pokes=[])
        settings = SandboxSettings(run_as=USER, max_output_bytes=20_000)
        builder = Builder(folder / "build", python=python, sandbox=settings)
        result = await builder.build(function("X = 1\n", "chatty\n"), build_id="b1")
        log = result.log_path.read_text()
    assert "[more output than build.max_output_bytes (20000); the rest is not logged]" in log
    assert len(log) < 30_000  # pip printed about 6 MB


@pytest.mark.parametrize(
    ("requirement", "words"),
    [("escape", "is a symlink to '/etc/passwd', outside the environment"), ("fifo", "'pipe'")],
)
async def test_what_pip_leaves_must_be_plain_files_inside_the_environment(
    requirement: str, words: str
) -> None:
    require_root_and_system_python()
    with open_folder() as folder:
        python = make_reporting_pip(folder, probes=[], pokes=[])
        builder = Builder(folder / "build", python=python, sandbox=SandboxSettings(run_as=USER))
        with pytest.raises(BuildFailed) as caught:
            await builder.build(function("X = 1\n", f"{requirement}\n"), build_id="b1")
        assert words in str(caught.value)
        assert list((folder / "build" / "envs").iterdir()) == []


async def test_without_root_pip_runs_as_the_platform_user_and_the_log_says_so() -> None:
    assert default_build_user(euid=1000) is None
    assert default_build_user(euid=0) is not None
    with open_folder() as folder:
        python = make_reporting_pip(folder, probes=[], pokes=[])
        builder = Builder(folder / "build", python=python, sandbox=SandboxSettings(run_as=None))
        lines = Lines()
        await builder.build(function("X = 1\n", "alpha\n"), build_id="b1", log=lines)
    assert "it is not sandboxed" in lines.find("dependencies: pip runs as the platform's own user")
    assert lines.find("pip: uid") == f"pip: uid {os.getuid()} gid {os.getgid()} " + (
        f"groups {sorted(os.getgroups())}"
    )


def test_the_environment_is_made_from_scratch() -> None:
    settings = SandboxSettings(run_as=USER, pip_env={"PIP_INDEX_URL": "https://mirror/simple"})
    env = pip_environment(settings, python="/usr/bin/python3", home=Path("/w/h"), tmp=Path("/w/t"))
    assert env["PATH"] == "/usr/bin:/usr/local/bin:/usr/bin:/bin"
    assert env["HOME"] == "/w/h" and env["TMPDIR"] == "/w/t"
    assert env["PIP_INDEX_URL"] == "https://mirror/simple"
    assert not [k for k in env if k.startswith(("FNMESH", "HTTP", "GIT", "SSL"))]
    with pytest.raises(ValueError, match=r"build\.pip_env may only set PIP_"):
        SandboxSettings(pip_env={"HTTPS_PROXY": "x"})
    with pytest.raises(ValueError, match=r"build\.timeout_seconds must be positive"):
        SandboxSettings(timeout_seconds=0)


def test_workspaces_of_dead_builders_are_removed_at_start(tmp_path: Path) -> None:
    dead, mine, other = (
        tmp_path / "fnmesh-build-999999999-abc-x",
        tmp_path / f"fnmesh-build-{os.getpid()}-abc-x",
        tmp_path / "unrelated-1",
    )
    for folder in (dead, mine, other):
        folder.mkdir()
    Builder(tmp_path / "build", sandbox=SandboxSettings(run_as=None, temp_root=tmp_path))
    assert not dead.exists()
    assert mine.exists() and other.exists()
