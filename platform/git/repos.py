"""The bare repositories, one per function, and the git commands run on them.

``<root>/<namespace>/<name>.git`` is created on first use (so a first push creates the
function), set up to refuse non-fast-forward updates and to check every object it
receives, with the platform's pre-receive hook installed; the hook is rewritten whenever
the platform ships a different one.

While a pre-receive hook runs, the pushed objects are still in the push's quarantine
folder (``GIT_QUARANTINE_PATH``); commands that read them get it as their object folder,
with the repository's own objects as the alternate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fnmesh.platform.git.refs import MAIN_BRANCH
from fnmesh.platform.git.urls import RepoRef

HOOK_SOURCE = Path(__file__).with_name("pre_receive.py")
HOOK_NAME = "pre-receive"
SETTINGS = (
    ("receive.denyNonFastForwards", "true"),
    ("receive.fsckObjects", "true"),
    ("http.receivepack", "true"),
    ("http.uploadpack", "true"),
    ("core.logAllRefUpdates", "true"),
)


class GitFailed(Exception):
    """A git command failed; the message holds git's own words."""


@dataclass(frozen=True, slots=True)
class GitResult:
    code: int
    stdout: bytes
    stderr: str


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The platform's environment without variables that point git elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra or {})
    return env


async def run_git(
    args: Sequence[str],
    *,
    git_dir: Path,
    env: Mapping[str, str] | None = None,
    git: str = "git",
    check: bool = True,
) -> GitResult:
    process = await asyncio.create_subprocess_exec(
        git,
        f"--git-dir={git_dir}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(env),
    )
    stdout, stderr = await process.communicate()
    code = process.returncode if process.returncode is not None else -1
    text = stderr.decode("utf-8", "replace").strip()
    if check and code != 0:
        raise GitFailed(f"git {args[0]} failed ({code}): {text or 'no message'}")
    return GitResult(code, stdout, text)


@dataclass(frozen=True, slots=True)
class Objects:
    """Where a command finds objects: the repository's, plus a push's quarantine if any."""

    repo: Path
    quarantine: Path | None = None

    def env(self) -> dict[str, str]:
        if self.quarantine is None:
            return {}
        return {
            "GIT_OBJECT_DIRECTORY": str(self.quarantine),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(self.repo / "objects"),
            "GIT_QUARANTINE_PATH": str(self.quarantine),
        }


def check_quarantine(repo: Path, given: str | None) -> Path | None:
    """The quarantine folder a hook reported, when it is one of ``repo``'s; else ValueError."""
    if not given:
        return None
    path = Path(given).resolve()
    objects = (repo / "objects").resolve()
    if path.parent != objects or not path.name.startswith("tmp_objdir-incoming-"):
        raise ValueError(f"{given!r} is not a push quarantine of {repo}")
    return path


class Repositories:
    def __init__(self, root: Path, *, git: str = "git") -> None:
        self.root = root
        self.git = git
        self._creating: dict[tuple[str, str], asyncio.Lock] = {}

    def path(self, repo: RepoRef) -> Path:
        return self.root / repo.relative_dir()

    def exists(self, repo: RepoRef) -> bool:
        return (self.path(repo) / "HEAD").is_file()

    async def ensure(self, repo: RepoRef) -> Path:
        """The repository's folder, created and set up when it is not there yet."""
        path = self.path(repo)
        lock = self._creating.setdefault(repo.key, asyncio.Lock())
        async with lock:
            if not self.exists(repo):
                await self._create(path)
            install_hook(path)
        return path

    async def _create(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            await run_git(
                ["init", "--quiet", "--bare", f"--initial-branch={MAIN_BRANCH}", "--template="],
                git_dir=scratch,
                git=self.git,
            )
            for key, value in SETTINGS:
                await run_git(["config", key, value], git_dir=scratch, git=self.git)
            install_hook(scratch)
            try:
                scratch.rename(path)
            except OSError:
                if not (path / "HEAD").is_file():
                    raise
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)

    async def refs(self, path: Path) -> dict[str, str]:
        """Every ref of the repository and the object it points at."""
        done = await run_git(
            ["for-each-ref", "--format=%(objectname) %(refname)"], git_dir=path, git=self.git
        )
        found = {}
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            object_id, _, ref = line.partition(" ")
            found[ref] = object_id
        return found

    async def is_ancestor(self, objects: Objects, old: str, new: str) -> bool:
        done = await run_git(
            ["merge-base", "--is-ancestor", old, new],
            git_dir=objects.repo,
            env=objects.env(),
            git=self.git,
            check=False,
        )
        if done.code not in (0, 1):
            raise GitFailed(f"git merge-base failed ({done.code}): {done.stderr}")
        return done.code == 0

    async def kind(self, objects: Objects, spec: str) -> str | None:
        """The type of object ``spec`` (``commit:path``) names: tree, blob, ... or None."""
        done = await run_git(
            ["cat-file", "-t", spec],
            git_dir=objects.repo,
            env=objects.env(),
            git=self.git,
            check=False,
        )
        return done.stdout.decode().strip() or None if done.code == 0 else None

    async def archive(self, objects: Objects, tree: str) -> bytes:
        """The tree ``tree`` (``commit`` or ``commit:sub/folder``) as an uncompressed tar."""
        done = await run_git(
            ["archive", "--format=tar", tree], git_dir=objects.repo, env=objects.env(), git=self.git
        )
        return done.stdout


def install_hook(repo: Path) -> None:
    """Put the platform's pre-receive hook into ``repo`` unless it is already there."""
    hooks = repo / "hooks"
    hooks.mkdir(exist_ok=True)
    target = hooks / HOOK_NAME
    wanted = HOOK_SOURCE.read_bytes()
    with contextlib.suppress(OSError):
        if target.read_bytes() == wanted and os.access(target, os.X_OK):
            return
    scratch = hooks / f".{HOOK_NAME}.{secrets.token_hex(4)}"
    scratch.write_bytes(wanted)
    scratch.chmod(0o755)
    os.replace(scratch, target)
