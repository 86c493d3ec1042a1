"""The bare repositories, one per function, and the git commands run on them.

``<root>/<namespace>/<name>.git`` is created on first use (so a first push creates the
function), set up to refuse non-fast-forward updates and to check every object it
receives, with the platform's pre-receive hook installed; the hook is rewritten whenever
the platform ships a different one.

Output that can be large (``git archive``, ``git ls-tree -r``) is streamed in chunks of
``CHUNK`` bytes to a callback that may stop it (``stream_git``): nothing holds a whole
tree in memory.

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
from collections.abc import Callable, Mapping, Sequence
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


CHUNK = 64 * 1024
_MAX_STDERR = 64 * 1024


class GitFailed(Exception):
    """A git command failed; the message holds git's own words."""


class ArchiveTooLarge(Exception):
    """``git archive`` produced more than the limit; it was stopped there."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the archive is over {limit} bytes")
        self.limit = limit


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


async def stream_git(
    args: Sequence[str],
    *,
    git_dir: Path,
    sink: Callable[[bytes], None],
    env: Mapping[str, str] | None = None,
    git: str = "git",
) -> None:
    """Run git, handing its output to ``sink`` in chunks of at most ``CHUNK`` bytes.

    When ``sink`` raises, git is killed and the exception propagates; a failing git
    raises GitFailed with its own words (the first 64 KiB of them).
    """
    process = await asyncio.create_subprocess_exec(
        git,
        f"--git-dir={git_dir}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(env),
    )
    assert process.stdout is not None and process.stderr is not None  # created with PIPE
    errors = asyncio.create_task(_read_bounded(process.stderr, _MAX_STDERR))
    try:
        while chunk := await process.stdout.read(CHUNK):
            sink(chunk)
        code = await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        errors.cancel()
        with contextlib.suppress(BaseException):
            await errors
        raise
    text = (await errors).decode("utf-8", "replace").strip()
    if code != 0:
        raise GitFailed(f"git {args[0]} failed ({code}): {text or 'no message'}")


async def _read_bounded(stream: asyncio.StreamReader, limit: int) -> bytes:
    """The first ``limit`` bytes of ``stream``; the rest is read and dropped."""
    kept = b""
    while chunk := await stream.read(CHUNK):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return kept


class LimitedFile:
    """A new file that refuses (ArchiveTooLarge) to grow past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.written = 0
        self.largest_write = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._out = open(fd, "wb", buffering=0)  # noqa: SIM115 (closed by close/discard)

    def write(self, chunk: bytes) -> None:
        self.written += len(chunk)
        self.largest_write = max(self.largest_write, len(chunk))
        if self.written > self.max_bytes:
            raise ArchiveTooLarge(self.max_bytes)
        self._out.write(chunk)

    def close(self) -> None:
        self._out.close()

    def discard(self) -> None:
        self._out.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class TreeFile:
    path: str
    size: int


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

    async def list_files(
        self, objects: Objects, tree: str, visit: Callable[[TreeFile], None]
    ) -> None:
        """Call ``visit`` with every file (blob) under ``tree`` and its size, as git lists them.

        ``visit`` may raise to stop the listing. Read from git's object headers, so it costs
        nothing like reading the files.
        """
        pending = bytearray()

        def sink(chunk: bytes) -> None:
            pending.extend(chunk)
            *records, rest = bytes(pending).split(b"\0")
            pending[:] = rest
            for record in records:
                header, _, name = record.partition(b"\t")
                fields = header.split()
                if len(fields) == 4 and fields[1] == b"blob":
                    size = int(fields[3]) if fields[3].isdigit() else 0
                    visit(TreeFile(name.decode("utf-8", "surrogateescape"), size))

        await stream_git(
            ["ls-tree", "-r", "-l", "-z", "--full-tree", tree],
            git_dir=objects.repo,
            env=objects.env(),
            git=self.git,
            sink=sink,
        )

    async def archive(self, objects: Objects, tree: str, dest: Path, *, max_bytes: int) -> int:
        """Write the tree ``tree`` (``commit`` or ``commit:sub/folder``) as an uncompressed tar
        to the new file ``dest``, stopping with ArchiveTooLarge past ``max_bytes``.

        Returns the size written. Memory use is one chunk, whatever the tree holds.
        """
        out = LimitedFile(dest, max_bytes)
        try:
            await stream_git(
                ["archive", "--format=tar", tree],
                git_dir=objects.repo,
                env=objects.env(),
                git=self.git,
                sink=out.write,
            )
        except BaseException:
            out.discard()
            raise
        out.close()
        return out.written


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
