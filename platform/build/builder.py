"""The build driver: bundle -> checked -> artifact on disk -> dependency environment.

Layout under the builder's root:

    artifacts/<hex>/     the extracted source, named by its digest; never changed once there
    envs/<key>/          dependencies installed with ``pip install --target``
    logs/<build_id>.log  the log of every build
    locks/<key>.lock     flock files that keep processes from installing one key twice
    tmp/<pid>-<rand>/    scratch of one build; leftovers of dead processes go at start

Steps: check the whole bundle (nothing is written when it is refused), extract it into
scratch while hashing, rename it into ``artifacts/`` (or keep the one already there), then
find or install the environment for its ``requirements.txt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fnmesh.platform.build.bundle import DEFAULT_LIMITS, BuildLimits, check_bundle
from fnmesh.platform.build.digest import digest_hex
from fnmesh.platform.build.envs import EnvironmentCache, InstallFailed
from fnmesh.platform.build.extract import extract_bundle
from fnmesh.platform.build.log import BuildLog, LogSink, check_build_id
from fnmesh.platform.build.requirements import (
    REQUIREMENTS_FILE,
    environment_key,
    included_files,
    normalize_requirements,
    uses_local_files,
)

T = TypeVar("T")
_MAX_INCLUDE_DEPTH = 10


@dataclass(frozen=True, slots=True)
class BuildResult:
    build_id: str
    digest: str  # "sha256:<hex>" over the normalized file set (path, exec bit, content)
    source_dir: Path  # ROOT/artifacts/<hex>
    env_dir: Path | None  # ROOT/envs/<key>, or None when there is no requirements.txt
    env_cached: bool
    duration_seconds: float
    log_path: Path


class BuildFailed(Exception):
    """The build could not finish (pip failed, the disk is full, ...); str(e) is the reason."""

    def __init__(
        self, reason: str, *, build_id: str, log_path: Path, tail: Sequence[str] = ()
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.build_id = build_id
        self.log_path = log_path
        self.tail = tuple(tail)  # the last lines of the failing step's output


class _StepFailed(Exception):
    def __init__(self, reason: str, tail: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tail = tuple(tail)


class Builder:
    def __init__(
        self,
        root: Path,
        *,
        limits: BuildLimits = DEFAULT_LIMITS,
        python: str = sys.executable,
        pip_args: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.limits = limits
        self.clock = clock
        self.artifacts = root / "artifacts"
        self.logs = root / "logs"
        self.tmp = root / "tmp"
        self.envs = EnvironmentCache(root, python=python, pip_args=pip_args)
        for folder in (self.artifacts, self.logs, self.tmp, self.envs.envs):
            folder.mkdir(parents=True, exist_ok=True)
        clean_scratch(self.tmp)

    def log_path(self, build_id: str) -> Path:
        return self.logs / f"{check_build_id(build_id)}.log"

    def artifact_dir(self, digest: str) -> Path:
        """Where the source of ``digest`` ("sha256:<hex>") lives; it may not exist."""
        return self.artifacts / digest_hex(digest)

    async def build(
        self, bundle: bytes, *, build_id: str, log: LogSink | None = None
    ) -> BuildResult:
        """Build ``bundle``; raises BundleError (nothing written) or BuildFailed."""
        log_path = self.log_path(build_id)
        members = await _in_thread(check_bundle, bundle, self.limits)
        started = self.clock()
        out = BuildLog(log_path, log)
        scratch = self.tmp / f"{os.getpid()}-{secrets.token_hex(6)}"
        try:
            files = sum(1 for m in members if m.kind != "dir")
            size = sum(m.size for m in members)
            await out.line(
                f"build {build_id}: {files} files, {size} bytes; unpacking and hashing the source"
            )
            source, digest = await self._store_source(bundle, scratch, out)
            env_dir, cached = await self._environment(source, digest, scratch, out)
            duration = self.clock() - started
            await out.line(f"build {build_id}: succeeded in {duration:.2f}s")
            return BuildResult(build_id, digest, source, env_dir, cached, duration, log_path)
        except _StepFailed as failure:
            await out.line(
                f"build {build_id}: failed in {self.clock() - started:.2f}s: {failure.reason}"
            )
            raise BuildFailed(
                failure.reason, build_id=build_id, log_path=log_path, tail=failure.tail
            ) from None
        except BaseException as error:
            out.record(
                f"build {build_id}: failed in {self.clock() - started:.2f}s: "
                f"{type(error).__name__}: {error}"
            )
            raise
        finally:
            out.close()
            remove_tree(scratch)

    async def _store_source(self, bundle: bytes, scratch: Path, out: BuildLog) -> tuple[Path, str]:
        unpacked = scratch / "source"
        try:
            digest, _, _ = await _in_thread(extract_bundle, bundle, self.limits, unpacked)
        except OSError as error:
            raise _StepFailed(f"could not write the source to disk: {error}") from None
        final = self.artifact_dir(digest)
        if final.is_dir():
            await out.line(f"source: {digest} (unchanged; reusing the artifact)")
            return final, digest
        try:
            unpacked.rename(final)
        except OSError as error:
            if not final.is_dir():
                raise _StepFailed(f"could not store the artifact: {error}") from None
            await out.line(f"source: {digest} (stored by a concurrent build)")
            return final, digest
        await out.line(f"source: {digest} (new artifact)")
        return final, digest

    async def _environment(
        self, source: Path, digest: str, scratch: Path, out: BuildLog
    ) -> tuple[Path | None, bool]:
        requirements = source / REQUIREMENTS_FILE
        if not requirements.is_file():
            await out.line(f"dependencies: none (no {REQUIREMENTS_FILE})")
            return None, False
        try:
            text = normalize_requirements(requirements.read_text("utf-8", "replace"))
            material = _with_includes(text, source, requirements.parent, 0)
        except OSError as error:
            raise _StepFailed(f"could not read {REQUIREMENTS_FILE}: {error}") from None
        if not text:
            await out.line(f"dependencies: none ({REQUIREMENTS_FILE} lists nothing)")
            return None, False
        try:
            interpreter = await self.envs.interpreter()
            local = uses_local_files(material)
            key = environment_key(
                material, interpreter, self.envs.pip_args, digest if local else None
            )
            started = self.clock()
            env_dir, cached = await self.envs.ensure(
                key, requirements, scratch=scratch / "env", log=out.line
            )
        except InstallFailed as failure:
            raise _StepFailed(failure.reason, failure.tail) from None
        except OSError as error:
            raise _StepFailed(f"could not store the environment: {error}") from None
        if not cached:
            await out.line(f"dependencies: installed ({key}) in {self.clock() - started:.2f}s")
        return env_dir, cached


def _with_includes(text: str, source: Path, folder: Path, depth: int) -> str:
    """``text`` followed by the normalized files it includes with -r/-c (inside the source)."""
    parts = [text]
    for name in included_files(text):
        path = (folder / name).resolve()
        inside = path.is_relative_to(source.resolve())
        if depth < _MAX_INCLUDE_DEPTH and inside and path.is_file():
            included = normalize_requirements(path.read_text("utf-8", "replace"))
            parts.append(f"# {name}\n" + _with_includes(included, source, path.parent, depth + 1))
        else:
            parts.append(f"# {name} (not read)")
    return "\n".join(parts)


async def _in_thread(function: Callable[..., T], *args: object) -> T:
    """Run blocking work in a thread; on cancellation wait for it, so no write outlives us."""
    task = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def remove_tree(path: Path) -> None:
    def retry_writable(function: Callable[..., object], name: str, _: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o755)
            function(name)

    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, onerror=retry_writable)


def clean_scratch(tmp: Path) -> None:
    """Remove scratch left behind by processes that are gone (ours are named <pid>-...)."""
    for entry in tmp.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        remove_tree(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
