"""The build driver: bundle -> checked -> artifact on disk -> dependency environment.

Layout under the builder's root:

    artifacts/<hex>/     the extracted source, named by its digest; never changed once there
    artifacts/<hex>.manifest   its sealed manifest (``seal``)
    envs/<key>/          dependencies installed with ``pip install --target`` (sandboxed)
    envs/<key>.manifest  its sealed manifest
    logs/<build_id>.log  the log of every build
    locks/<key>.lock     flock files that keep processes from installing one key twice
    tmp/<pid>-<rand>/    scratch of one build; leftovers of dead processes go at start

Steps: check the whole bundle (nothing is written when it is refused), extract it into
scratch while hashing, seal it and rename it into ``artifacts/`` (or keep the one already
there once it passes its check; a tampered one is replaced by the fresh copy), then check
``requirements.txt`` and find or install its environment.

The root is made 0700: only the platform's user reads or writes anything under it; every
tree in it is owned by that user, folders 0755 and files 0644/0755.
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

from fnmesh.platform.build.bundle import DEFAULT_LIMITS, BuildLimits, Bundle, check_bundle
from fnmesh.platform.build.digest import digest_hex
from fnmesh.platform.build.envs import EnvironmentCache, InstallFailed
from fnmesh.platform.build.extract import extract_bundle
from fnmesh.platform.build.log import BuildLog, LogSink, check_build_id
from fnmesh.platform.build.requirements import (
    REQUIREMENTS_FILE,
    RequirementProblem,
    check_requirements,
    environment_key,
    includes,
    normalize_requirements,
)
from fnmesh.platform.build.sandbox import SandboxSettings, clean_workspaces
from fnmesh.platform.build.seal import (
    TreeTampered,
    TreeVerifier,
    manifest_path,
    move_seal,
    seal,
)

T = TypeVar("T")
_MAX_INCLUDES = 20


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
        sandbox: SandboxSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.limits = limits
        self.clock = clock
        self.artifacts = root / "artifacts"
        self.logs = root / "logs"
        self.tmp = root / "tmp"
        self.sandbox = sandbox if sandbox is not None else SandboxSettings()
        self.verifier = TreeVerifier()
        self.envs = EnvironmentCache(
            root, python=python, pip_args=pip_args, sandbox=self.sandbox, verifier=self.verifier
        )
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)  # the build user and replicas have no business in here
        for folder in (self.artifacts, self.logs, self.tmp, self.envs.envs):
            folder.mkdir(parents=True, exist_ok=True)
        clean_scratch(self.tmp)
        clean_workspaces(self.sandbox, _alive)

    def log_path(self, build_id: str) -> Path:
        return self.logs / f"{check_build_id(build_id)}.log"

    def artifact_dir(self, digest: str) -> Path:
        """Where the source of ``digest`` ("sha256:<hex>") lives; it may not exist."""
        return self.artifacts / digest_hex(digest)

    async def build(
        self, bundle: Bundle, *, build_id: str, log: LogSink | None = None
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

    async def _store_source(self, bundle: Bundle, scratch: Path, out: BuildLog) -> tuple[Path, str]:
        unpacked = scratch / "source"
        try:
            digest, _, _ = await _in_thread(extract_bundle, bundle, self.limits, unpacked)
        except OSError as error:
            raise _StepFailed(f"could not write the source to disk: {error}") from None
        final = self.artifact_dir(digest)
        if final.is_dir():
            problem = await self._check(final, digest)
            if problem is None:
                await out.line(f"source: {digest} (unchanged; reusing the artifact)")
                return final, digest
            await out.line(f"source: the stored artifact failed its check ({problem}); replacing")
            await _in_thread(_set_aside, final, scratch / "replaced")
            self.verifier.forget(final)
        try:
            await _in_thread(seal, unpacked)
            # the same files give the same manifest, so it may go first: a tree in place
            # never lacks its manifest
            move_seal(unpacked, final)
            unpacked.rename(final)
        except OSError as error:
            if not final.is_dir() or await self._check(final, digest) is not None:
                raise _StepFailed(f"could not store the artifact: {error}") from None
            await out.line(f"source: {digest} (stored by a concurrent build)")
            return final, digest
        await out.line(f"source: {digest} (new artifact)")
        return final, digest

    async def _check(self, tree: Path, digest: str) -> str | None:
        """None when ``tree`` is the intact artifact of ``digest``; else what is wrong."""
        try:
            await _in_thread(self.verifier.verify, tree, digest)
        except TreeTampered as error:
            return str(error)
        return None

    async def _environment(
        self, source: Path, digest: str, scratch: Path, out: BuildLog
    ) -> tuple[Path | None, bool]:
        requirements = source / REQUIREMENTS_FILE
        if not requirements.is_file():
            await out.line(f"dependencies: none (no {REQUIREMENTS_FILE})")
            return None, False
        try:
            files: dict[str, bytes] = {}
            problems: list[RequirementProblem] = []
            _read_requirements(
                source, REQUIREMENTS_FILE, files, problems, self.sandbox.allow_index_options
            )
        except OSError as error:
            raise _StepFailed(f"could not read {REQUIREMENTS_FILE}: {error}") from None
        if problems:
            for problem in problems:
                await out.line(f"dependencies: refused: {problem.render()}")
            raise _StepFailed(
                f"{REQUIREMENTS_FILE} was refused: " + "; ".join(p.render() for p in problems)
            )
        text = normalize_requirements(files[REQUIREMENTS_FILE].decode("utf-8", "replace"))
        if not text:
            await out.line(f"dependencies: none ({REQUIREMENTS_FILE} lists nothing)")
            return None, False
        material = "\n".join(
            [text]
            + [
                f"# {name}\n" + normalize_requirements(content.decode("utf-8", "replace"))
                for name, content in files.items()
                if name != REQUIREMENTS_FILE
            ]
        )
        try:
            interpreter = await self.envs.interpreter()
            key = environment_key(material, interpreter, self.envs.pip_args)
            started = self.clock()
            env_dir, cached = await self.envs.ensure(
                key, files, scratch=scratch / "env", log=out.line
            )
        except InstallFailed as failure:
            raise _StepFailed(failure.reason, failure.tail) from None
        except OSError as error:
            raise _StepFailed(f"could not store the environment: {error}") from None
        if not cached:
            await out.line(f"dependencies: installed ({key}) in {self.clock() - started:.2f}s")
        return env_dir, cached


def _read_requirements(
    source: Path,
    name: str,
    files: dict[str, bytes],
    problems: list[RequirementProblem],
    allow_index_options: bool,
) -> None:
    """Read ``name`` and the files it includes into ``files``, checking each one."""
    content = (source / name).read_bytes()
    files[name] = content
    text = content.decode("utf-8", "replace")
    problems.extend(check_requirements(text, file=name, allow_index_options=allow_index_options))
    for include in includes(text, name):
        if include.path is None or include.path in files:
            continue  # refused above, or read already
        if len(files) >= _MAX_INCLUDES:
            problems.append(
                RequirementProblem(
                    name, include.line, f"more than {_MAX_INCLUDES} included files; merge them"
                )
            )
            return
        path = (source / include.path).resolve()
        if not path.is_relative_to(source.resolve()) or not path.is_file():
            problems.append(
                RequirementProblem(
                    name,
                    include.line,
                    f"{include.option} {include.name}: no such file in the function's folder; "
                    "add it or remove the line",
                )
            )
            continue
        _read_requirements(source, include.path, files, problems, allow_index_options)


def _set_aside(tree: Path, aside: Path) -> None:
    """Move ``tree`` (and its manifest) out of the way in one rename, then delete it."""
    aside.parent.mkdir(parents=True, exist_ok=True)
    tree.rename(aside)
    with contextlib.suppress(OSError):
        os.replace(manifest_path(tree), manifest_path(aside))
    remove_tree(aside)


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
