"""The dependency environment cache: ``<root>/envs/<key>/``, filled by ``pip install --target``.

An environment is installed once per key. pip runs in a sandbox (``sandbox``: the build
user, a cleared environment, a workspace of its own, a deadline); when it succeeds the
platform copies its output into scratch space it owns (``adopt``), seals it (``seal``:
a manifest of per-file hashes) and renames it into place, so a failed install leaves
nothing behind and an environment is never writable by the code that built it. A cached
environment is verified against its manifest before it is reused; a tampered one is
thrown away and installed again. Builds of the same key wait for one install: an asyncio
lock per key inside the process and an ``flock`` on ``<root>/locks/<key>.lock`` across
processes (flock locks belong to an open file, so two caches in one process exclude each
other too).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import sys
import sysconfig
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from fnmesh.platform.build.adopt import AdoptRefused, adopt_tree
from fnmesh.platform.build.requirements import REQUIREMENTS_FILE, Interpreter
from fnmesh.platform.build.sandbox import (
    SandboxSettings,
    Workspace,
    can_run,
    candidate_pythons,
    make_workspace,
    pip_environment,
    launch,
    remove_workspace,
)
from fnmesh.platform.build.seal import TreeTampered, TreeVerifier, move_seal, seal

LogLine = Callable[[str], Awaitable[None]]

PIP_PREFIX = "pip: "
_MAX_LINE = 4096  # longer lines are cut in the log
_TAIL_LINES = 15
_PROBE = (
    "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); "
    "print(sys.implementation.cache_tag); print(sysconfig.get_platform())"
)
_PIP_PROBE = _PROBE + "; import pip"


class InstallFailed(Exception):
    """pip could not install the requirements; ``tail`` holds its last output lines."""

    def __init__(self, reason: str, tail: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tail = tuple(tail)


def current_interpreter() -> Interpreter:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return Interpreter(version, f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}")


async def probe_interpreter(python: str) -> Interpreter:
    """Version and platform tag of ``python``; raises InstallFailed when it cannot run."""
    if _same_file(python, sys.executable):
        return current_interpreter()
    try:
        process = await asyncio.create_subprocess_exec(
            python,
            "-c",
            _PROBE,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as error:
        raise InstallFailed(f"cannot run the build's Python {python!r}: {error}") from None
    output, _ = await process.communicate()
    lines = output.decode("utf-8", "replace").split()
    if process.returncode != 0 or len(lines) != 3:
        raise InstallFailed(
            f"the build's Python {python!r} did not report its version "
            f"(exit status {process.returncode})",
            lines[-5:],
        )
    return Interpreter(lines[0], f"{lines[1]}-{lines[2]}")


def _same_file(one: str, other: str) -> bool:
    return os.path.realpath(one) == os.path.realpath(other)


@contextlib.asynccontextmanager
async def file_lock(path: Path, on_wait: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Hold an exclusive flock on ``path``; polls, so waiting never blocks the event loop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        delay = 0.02
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    waited = True
                    await on_wait()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        yield
    finally:
        os.close(fd)  # releases the lock


class EnvironmentCache:
    def __init__(
        self,
        root: Path,
        *,
        python: str,
        pip_args: Sequence[str] = (),
        sandbox: SandboxSettings | None = None,
        verifier: TreeVerifier | None = None,
    ) -> None:
        self.envs = root / "envs"
        self.locks = root / "locks"
        self.python = python
        self.pip_args = tuple(pip_args)
        self.sandbox = sandbox if sandbox is not None else SandboxSettings()
        self.verifier = verifier if verifier is not None else TreeVerifier()
        self._locks: dict[str, asyncio.Lock] = {}
        self._interpreter: Interpreter | None = None
        self._pip_python: str | None = None

    async def interpreter(self) -> Interpreter:
        if self._interpreter is None:
            self._interpreter = await probe_interpreter(self.python)
        return self._interpreter

    def path(self, key: str) -> Path:
        return self.envs / key

    async def _cached(self, final: Path, key: str, log: LogLine) -> bool:
        """Whether ``final`` is there and intact; a tampered one is removed (and logged)."""
        present, problem = await asyncio.to_thread(self._check, final)
        if not present:
            return False
        if problem is not None:
            await log(
                f"dependencies: the cached environment failed its check ({problem}); reinstalling"
            )
            await asyncio.to_thread(_discard, final)
            self.verifier.forget(final)
            return False
        await log(f"dependencies: cached ({key})")
        return True

    def _check(self, final: Path) -> tuple[bool, str | None]:
        """(whether ``final`` exists, what is wrong with it or None)."""
        if not final.is_dir():
            return False, None
        try:
            self.verifier.verify(final)
        except TreeTampered as error:
            return True, str(error)
        return True, None

    async def ensure(
        self, key: str, files: Mapping[str, bytes], *, scratch: Path, log: LogLine
    ) -> tuple[Path, bool]:
        """The environment for ``key``, installing the requirement ``files`` if needed.

        ``files`` maps paths inside the bundle to contents: ``requirements.txt`` and the
        files it includes. Returns (path, cached). ``scratch`` is an empty-or-absent folder
        on the same file system as the cache. Raises InstallFailed.
        """
        final = self.path(key)
        if await self._cached(final, key, log):
            return final, True
        async with self._locks.setdefault(key, asyncio.Lock()):
            if await self._cached(final, key, log):
                return final, True

            async def waiting() -> None:
                await log(f"dependencies: waiting for another build installing {key}")

            async with file_lock(self.locks / f"{key}.lock", waiting):
                if await self._cached(final, key, log):
                    return final, True
                await log(f"dependencies: installing {REQUIREMENTS_FILE} ({key})")
                await self._install(files, scratch, log)
                return final, not _publish(scratch, final)

    def command(self, python: str, target: Path) -> list[str]:
        return [
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(target),
            "-r",
            REQUIREMENTS_FILE,  # pip runs in the workspace's src/ folder
            *self.pip_args,
        ]

    async def pip_python(self, log: LogLine) -> str:
        """The interpreter the build user runs pip with (same version and platform tag)."""
        if self._pip_python is not None:
            return self._pip_python
        user = self.sandbox.run_as
        if user is None:
            self._pip_python = self.python
            return self.python
        wanted = await self.interpreter()
        tried = []
        for python in [self.python, *candidate_pythons(wanted.version)]:
            if python in tried:
                continue
            tried.append(python)
            ok, output = await can_run(python, self.sandbox, _PIP_PROBE)
            found = output.split()
            if ok and len(found) == 3 and Interpreter(found[0], f"{found[1]}-{found[2]}") == wanted:
                if python != self.python:
                    await log(
                        f"dependencies: the build user cannot run {self.python}; pip runs "
                        f"with {python}, the same Python {wanted.version} ({wanted.platform_tag})"
                    )
                self._pip_python = python
                return python
        raise InstallFailed(
            f"the build user {user.describe()} cannot run pip with {self.python!r} or another "
            f"Python {wanted.version} ({', '.join(tried)}): make the interpreter and its "
            "pip readable by that user, or configure the build's Python"
        )

    async def _install(self, files: Mapping[str, bytes], scratch: Path, log: LogLine) -> None:
        user = self.sandbox.run_as
        if user is None:
            who = "the platform's own user" + (
                " (the platform does not run as root, so it cannot switch to a build user)"
                if os.geteuid() != 0
                else " (no build user is configured)"
            )
            await log(f"dependencies: pip runs as {who}, uid {os.geteuid()}; it is not sandboxed")
        python = await self.pip_python(log)
        space = await asyncio.to_thread(make_workspace, self.sandbox, files, scratch.parent.name)
        try:
            if user is not None:
                await log(
                    f"dependencies: pip runs as {user.describe()} in {space.root}, at most "
                    f"{self.sandbox.timeout_seconds:g}s"
                )
            await self._run_pip(python, space, log)
            await asyncio.to_thread(self._adopt, space, scratch)
        except BaseException:
            remove_tree_quietly(scratch)
            raise
        finally:
            await asyncio.to_thread(remove_workspace, space)

    def _adopt(self, space: Workspace, scratch: Path) -> None:
        """Copy pip's output into ``scratch`` as the platform's own, and seal it."""
        if not os.path.lexists(space.target):
            space.target.mkdir()  # pip makes no folder when nothing is installed
        try:
            adopt_tree(
                space.target,
                scratch,
                max_bytes=self.sandbox.max_environment_bytes,
                max_files=self.sandbox.max_environment_files,
            )
        except AdoptRefused as refused:
            raise InstallFailed(str(refused)) from None
        seal(scratch)

    async def _run_pip(self, python: str, space: Workspace, log: LogLine) -> None:
        settings = self.sandbox
        try:
            process = await asyncio.create_subprocess_exec(
                *launch(settings, self.command(python, space.target)),
                cwd=space.src,
                env=pip_environment(settings, python=python, home=space.home, tmp=space.tmp),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise InstallFailed(f"cannot run pip with {python!r}: {error}") from None
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        try:
            async with asyncio.timeout(settings.timeout_seconds):
                await _stream_lines(process, tail, log, settings.max_output_bytes)
                status = await process.wait()
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            raise InstallFailed(
                f"pip install -r {REQUIREMENTS_FILE} did not finish within "
                f"{settings.timeout_seconds:g}s (build.timeout_seconds) and was stopped: "
                "install fewer or prebuilt (wheel) packages, or ask the operator to raise it",
                tail,
            ) from None
        except BaseException:
            _kill_group(process.pid)
            with contextlib.suppress(BaseException):
                await process.wait()
            raise
        _kill_group(process.pid)  # anything pip left running in its session
        if status != 0:
            errors = [line for line in tail if "ERROR" in line]
            detail = errors[-1] if errors else (tail[-1] if tail else "no output")
            raise InstallFailed(
                f"pip install -r {REQUIREMENTS_FILE} failed (exit status {status}): {detail}",
                tail,
            )


def remove_tree_quietly(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.with_name(path.name + ".manifest").unlink()


def _discard(tree: Path) -> None:
    """Move ``tree`` out of the way at once (a rename), then delete it."""
    aside = tree.with_name(f".discard-{tree.name}-{os.getpid()}-{id(tree)}")
    try:
        tree.rename(aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _publish(installed: Path, final: Path) -> bool:
    """Rename the sealed folder and its manifest into place; False when another got there first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        installed.rename(final)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        remove_tree_quietly(installed)
        return False
    move_seal(installed, final)
    return True


async def _stream_lines(
    process: asyncio.subprocess.Process,
    tail: collections.deque[str],
    log: LogLine,
    max_bytes: int,
) -> None:
    """Log pip's output line by line, up to ``max_bytes``; the rest is read and dropped."""
    assert process.stdout is not None  # created with stdout=PIPE
    pending = b""
    logged = 0
    while True:
        chunk = await process.stdout.read(65536)
        lines = (pending + chunk).replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        pending = lines.pop() if chunk else b""
        if len(pending) > _MAX_LINE:  # no newline in sight: pass it on as it is
            lines.append(pending)
            pending = b""
        for raw in lines:
            text = raw[:_MAX_LINE].decode("utf-8", "replace").rstrip()
            if not text:
                continue
            tail.append(text)
            if logged <= max_bytes:
                logged += len(text) + 1
                if logged > max_bytes:
                    await log(
                        f"{PIP_PREFIX}[more output than build.max_output_bytes "
                        f"({max_bytes}); the rest is not logged]"
                    )
                else:
                    await log(PIP_PREFIX + text)
        if not chunk:
            return


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
