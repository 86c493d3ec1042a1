"""Where and as whom pip runs: an unprivileged build user, a cleared environment, a deadline.

``requirements.txt`` makes pip download and run code (``setup.py``, build backends), so
the install runs:

- as the build user: the account ``fnmesh-build`` when it exists, else uid/gid 65532,
  with no supplementary groups. When the platform does not run as root it cannot switch
  users; pip then runs as the platform's own user and the build log says so;
- in a fresh workspace under the system's temporary folder, owned by the build user and
  mode 0700: ``src/`` (copies of the requirement files, pip's working folder), ``home/``
  (``$HOME``), ``tmp/`` (``$TMPDIR``) and ``target/`` (``pip install --target``). The
  platform home is never its working folder and is not readable by it (the home is 0700);
- with an environment made from scratch: ``PATH``, ``HOME``, ``TMPDIR``, ``LANG``,
  ``PYTHONUNBUFFERED``, pip's own switches and the ``PIP_*`` settings the operator
  configured; nothing inherited, so no platform variable, proxy or credential leaks in;
- in a session of its own, killed as a group at the deadline (``timeout_seconds``), when
  the build is cancelled, and after pip exits; its output is logged up to
  ``max_output_bytes``.

See docs/build-sandbox.md for what this does and does not contain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEDICATED_ACCOUNT = "fnmesh-build"
FALLBACK_ID = 65532
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
WORKSPACE_PREFIX = "fnmesh-build-"  # then the builder's pid


@dataclass(frozen=True, slots=True)
class BuildUser:
    uid: int
    gid: int
    name: str  # for the build log

    def describe(self) -> str:
        return f"{self.name} (uid {self.uid}, gid {self.gid})"


def default_build_user(euid: int | None = None) -> BuildUser | None:
    """The build user when the platform runs as root; None otherwise (it cannot switch)."""
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    try:
        account = pwd.getpwnam(DEDICATED_ACCOUNT)
    except KeyError:
        return BuildUser(FALLBACK_ID, FALLBACK_ID, "the build user")
    return BuildUser(account.pw_uid, account.pw_gid, DEDICATED_ACCOUNT)


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    run_as: BuildUser | None = field(default_factory=default_build_user)
    timeout_seconds: float = 300.0  # the whole pip run, killed as a process group after it
    max_output_bytes: int = 1024 * 1024  # pip output written to the build log
    max_environment_bytes: int = 2 * 1024 * 1024 * 1024
    max_environment_files: int = 200_000
    pip_env: Mapping[str, str] = field(default_factory=dict)  # e.g. PIP_INDEX_URL
    allow_index_options: bool = False  # --index-url & co. in requirements.txt
    temp_root: Path | None = None  # where workspaces go; None: the system's temporary folder

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ValueError(f"build.timeout_seconds must be positive, not {self.timeout_seconds}")
        bad = [k for k in self.pip_env if not k.startswith("PIP_")]
        if bad:
            raise ValueError(
                f"build.pip_env may only set PIP_* variables, not {', '.join(sorted(bad))}"
            )


def pip_environment(
    settings: SandboxSettings, *, python: str, home: Path, tmp: Path
) -> dict[str, str]:
    """The whole environment pip runs with (pure)."""
    env = {
        "PATH": f"{os.path.dirname(python)}:{SAFE_PATH}",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",  # lines as they happen, not when pip's buffer fills
        "PYTHONNOUSERSITE": "1",
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.update(settings.pip_env)
    return env


@dataclass(frozen=True, slots=True)
class Workspace:
    root: Path
    src: Path  # pip's working folder, with the requirement files
    home: Path
    tmp: Path
    target: Path


def make_workspace(
    settings: SandboxSettings, files: Mapping[str, bytes], build_id: str
) -> Workspace:
    """A fresh workspace holding ``files`` (relative path -> content), owned by the build user.

    ``build_id`` must start with this process's pid and a dash (``clean_workspaces``).
    """
    base = settings.temp_root or Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{build_id}-", dir=base))
    space = Workspace(root, root / "src", root / "home", root / "tmp", root / "target")
    for folder in (space.src, space.home, space.tmp):
        folder.mkdir(mode=0o700)
    for name, content in files.items():
        path = space.src.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    user = settings.run_as
    if user is not None:
        for here, _, names in os.walk(root):
            os.chown(here, user.uid, user.gid)
            for name in names:
                os.chown(os.path.join(here, name), user.uid, user.gid)
    return space


def remove_workspace(space: Workspace) -> None:
    shutil.rmtree(space.root, ignore_errors=True)


def clean_workspaces(settings: SandboxSettings, alive: Callable[[int], bool]) -> None:
    """Remove workspaces left by builder processes that are gone (named by their pid)."""
    base = settings.temp_root or Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            pid = entry.name.removeprefix(WORKSPACE_PREFIX).split("-", 1)[0]
            if entry.name.startswith(WORKSPACE_PREFIX) and pid.isdigit() and not alive(int(pid)):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)


def scratch_name(build_id: str) -> str:
    return f"{build_id}-{secrets.token_hex(4)}"


# Run as root until the exec: drop supplementary groups, then the group, then the user
# (setuid as root sets the real, effective and saved ids), set the umask, exec the command.
# A launcher rather than Popen(user=...) because uvloop's subprocesses take no such options.
_DROP = (
    "import os, sys; uid, gid, mask = map(int, sys.argv[1:4]); os.setgroups([]); "
    "os.setgid(gid); os.setuid(uid); os.umask(mask); os.execv(sys.argv[4], sys.argv[4:])"
)


def launch(settings: SandboxSettings, argv: Sequence[str]) -> list[str]:
    """``argv`` as the build user runs it (unchanged when there is no build user)."""
    user = settings.run_as
    if user is None:
        return list(argv)
    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _DROP,
        str(user.uid),
        str(user.gid),
        str(0o022),
        *argv,
    ]


async def can_run(python: str, settings: SandboxSettings, probe: str) -> tuple[bool, str]:
    """Whether the build user can run ``python -c probe``; (ok, its output)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *launch(settings, [python, "-c", probe]),
            cwd="/",
            env={"PATH": SAFE_PATH, "LANG": "C.UTF-8"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return False, str(error)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        return False, "did not answer within 30 s"
    return process.returncode == 0, output.decode("utf-8", "replace")


def candidate_pythons(version: str) -> list[str]:
    """Interpreters outside any user's home that may match ``version`` (major.minor)."""
    names = [f"python{version}", "python3"]
    found = [f"{folder}/{name}" for folder in ("/usr/local/bin", "/usr/bin") for name in names]
    return [path for path in found if os.path.exists(path)]
