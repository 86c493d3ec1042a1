"""The dependency environment cache: ``<root>/envs/<key>/``, filled by ``pip install --target``.

An environment is installed once per key, into scratch space, and renamed into place only
when pip succeeds, so a failed install leaves nothing behind. Builds of the same key wait
for one install: an asyncio lock per key inside the process and an ``flock`` on
``<root>/locks/<key>.lock`` across processes (flock locks belong to an open file, so two
caches in one process exclude each other too).
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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from fnmesh.platform.build.requirements import Interpreter

LogLine = Callable[[str], Awaitable[None]]

PIP_PREFIX = "pip: "
_MAX_LINE = 64 * 1024
_PROBE = (
    "import sys, sysconfig; print('%d.%d' % sys.version_info[:2]); "
    "print(sys.implementation.cache_tag); print(sysconfig.get_platform())"
)
# pip options from the environment that contradict --target.
_DROPPED_ENV = ("PIP_USER", "PIP_PREFIX", "PIP_ROOT", "PIP_TARGET", "PIP_REQUIRE_VIRTUALENV")


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
    def __init__(self, root: Path, *, python: str, pip_args: Sequence[str] = ()) -> None:
        self.envs = root / "envs"
        self.locks = root / "locks"
        self.python = python
        self.pip_args = tuple(pip_args)
        self._locks: dict[str, asyncio.Lock] = {}
        self._interpreter: Interpreter | None = None

    async def interpreter(self) -> Interpreter:
        if self._interpreter is None:
            self._interpreter = await probe_interpreter(self.python)
        return self._interpreter

    def path(self, key: str) -> Path:
        return self.envs / key

    async def ensure(
        self, key: str, requirements: Path, *, scratch: Path, log: LogLine
    ) -> tuple[Path, bool]:
        """The environment for ``key``, installing ``requirements`` if needed.

        Returns (path, cached). ``scratch`` is an empty-or-absent folder on the same file
        system; pip installs there before the rename. Raises InstallFailed.
        """
        final = self.path(key)
        if final.is_dir():
            await log(f"dependencies: cached ({key})")
            return final, True
        async with self._locks.setdefault(key, asyncio.Lock()):
            if final.is_dir():
                await log(f"dependencies: cached ({key})")
                return final, True

            async def waiting() -> None:
                await log(f"dependencies: waiting for another build installing {key}")

            async with file_lock(self.locks / f"{key}.lock", waiting):
                if final.is_dir():
                    await log(f"dependencies: cached ({key})")
                    return final, True
                await log(f"dependencies: installing {requirements.name} ({key})")
                await self._install(requirements, scratch, log)
                return final, not _publish(scratch, final)

    def command(self, requirements: Path, target: Path) -> list[str]:
        return [
            self.python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(target),
            "-r",
            requirements.name,  # pip runs in the requirements' folder
            *self.pip_args,
        ]

    async def _install(self, requirements: Path, target: Path, log: LogLine) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, not when pip's buffer fills
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(requirements, target),
                cwd=requirements.parent,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise InstallFailed(f"cannot run pip with {self.python!r}: {error}") from None
        tail: collections.deque[str] = collections.deque(maxlen=15)
        try:
            await _stream_lines(process, tail, log)
            status = await process.wait()
        except BaseException:
            _kill_group(process.pid)
            with contextlib.suppress(BaseException):
                await process.wait()
            shutil.rmtree(target, ignore_errors=True)
            raise
        if status != 0:
            shutil.rmtree(target, ignore_errors=True)
            errors = [line for line in tail if "ERROR" in line]
            detail = errors[-1] if errors else (tail[-1] if tail else "no output")
            raise InstallFailed(
                f"pip install -r {requirements.name} failed (exit status {status}): {detail}",
                tail,
            )


def _publish(installed: Path, final: Path) -> bool:
    """Rename the installed folder into place; False when another writer got there first."""
    installed.mkdir(exist_ok=True)  # pip makes no folder when nothing is installed
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        installed.rename(final)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        shutil.rmtree(installed, ignore_errors=True)
        return False
    return True


async def _stream_lines(
    process: asyncio.subprocess.Process, tail: collections.deque[str], log: LogLine
) -> None:
    assert process.stdout is not None  # created with stdout=PIPE
    pending = b""
    while True:
        chunk = await process.stdout.read(65536)
        lines = (pending + chunk).replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        pending = lines.pop() if chunk else b""
        if len(pending) > _MAX_LINE:  # no newline in sight: pass it on as it is
            lines.append(pending)
            pending = b""
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                tail.append(text)
                await log(PIP_PREFIX + text)
        if not chunk:
            return


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
