"""A pushed commit's tree as a source bundle, packed exactly as ``fn deploy`` packs a folder.

The tree (or the remote's sub-folder of it) is archived by git, unpacked into scratch space
and packed with the builder's ``pack``, so ``.fnignore``/``.gitignore`` rules, the always
skipped files and every bundle check are the same for a push and for ``fn deploy``.

A pushed commit can describe gigabytes in a few megabytes on the wire (a file of zeros
compresses well), so sizes are checked before anything is unpacked: first the file sizes
git lists for the tree (``TreeBudget``, refusing at the first file over the limits), then
the archive itself, streamed to a file in scratch space and stopped at the limit.
"""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
from pathlib import Path

from fnmesh.platform.build import BuildLimits, BundleError, pack
from fnmesh.platform.git.repos import ArchiveTooLarge, Objects, Repositories, TreeFile
from fnmesh.platform.model.manifest import MANIFEST_FILE

_TAR_OVERHEAD = 1024  # tar headers per entry, on top of the file contents


class SourceRefused(Exception):
    """The commit cannot be deployed as it is; the message says what is missing or wrong."""


class TreeBudget:
    """Counts a tree's files as git lists them; raises SourceRefused past the limits (pure)."""

    def __init__(self, commit: str, limits: BuildLimits) -> None:
        self.short = commit[:12]
        self.limits = limits
        self.files = 0
        self.total = 0

    def __call__(self, entry: TreeFile) -> None:
        limit = self.limits.max_unpacked_bytes
        self.files += 1
        self.total += entry.size
        fix = (
            "leave large files out of the repository (git rm --cached, then .gitignore; "
            "files that .fnignore leaves out still count here) or raise "
            "build.{field} in the platform's config.yaml"
        )
        if entry.size > limit:
            raise SourceRefused(
                f"commit {self.short} has the file {entry.path!r} of {entry.size} bytes, over "
                f"build.max_unpacked_bytes ({limit} bytes): "
                + fix.format(field="max_unpacked_bytes")
            )
        if self.total > limit:
            raise SourceRefused(
                f"commit {self.short} holds more than {limit} bytes of source "
                f"(build.max_unpacked_bytes; reached at {entry.path!r}): "
                + fix.format(field="max_unpacked_bytes")
            )
        if self.files > self.limits.max_files:
            raise SourceRefused(
                f"commit {self.short} holds more than {self.limits.max_files} files "
                "(build.max_files): " + fix.format(field="max_files")
            )


def where(subdir: str) -> str:
    return f"in its folder {subdir!r}" if subdir else "at its root"


async def commit_bundle(
    repos: Repositories,
    objects: Objects,
    commit: str,
    subdir: str,
    *,
    scratch: Path,
    limits: BuildLimits,
) -> bytes:
    """The bundle of ``commit`` (its ``subdir``); raises SourceRefused."""
    short = commit[:12]
    if subdir and await repos.kind(objects, f"{commit}:{subdir}") != "tree":
        raise SourceRefused(
            f"commit {short} has no folder {subdir!r}, which this remote deploys from: "
            "commit the function there, or add the remote again with "
            "`fn git-remote NAME --path FOLDER` naming the right folder"
        )
    manifest = f"{subdir}/{MANIFEST_FILE}" if subdir else MANIFEST_FILE
    if await repos.kind(objects, f"{commit}:{manifest}") != "blob":
        raise SourceRefused(
            f"commit {short} has no {MANIFEST_FILE} {where(subdir)}: commit one with at least "
            "'name' and 'handler' ('fn init' writes one)"
            + (
                ""
                if subdir
                else ", or, if the function lives in a sub-folder, add the remote with "
                "`fn git-remote NAME --path FOLDER`"
            )
        )
    tree = f"{commit}:{subdir}" if subdir else commit
    await repos.list_files(objects, tree, TreeBudget(commit, limits))
    ceiling = limits.max_unpacked_bytes + _TAR_OVERHEAD * (limits.max_files + 1)
    work = Path(await asyncio.to_thread(_make_scratch, scratch))
    try:
        archive = work / "tree.tar"
        try:
            await repos.archive(objects, tree, archive, max_bytes=ceiling)
        except ArchiveTooLarge:
            raise SourceRefused(
                f"commit {short} holds more than {limits.max_unpacked_bytes} bytes of source "
                "(build.max_unpacked_bytes): leave large files out of the function's folder"
            ) from None
        return await asyncio.to_thread(repack, archive, work / "tree", limits)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def _make_scratch(scratch: Path) -> str:
    scratch.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix="push-", dir=scratch)


def repack(archive: Path, folder: Path, limits: BuildLimits) -> bytes:
    """Unpack git's tar into ``folder`` and pack the folder as ``fn deploy`` would."""
    folder.mkdir()
    try:
        with tarfile.open(archive, mode="r:") as tar:
            try:
                tar.extractall(folder, filter="data")
            except tarfile.FilterError as error:
                member = error.tarinfo.name
                raise SourceRefused(
                    f"{member!r} cannot be deployed: {error}; symlinks must point inside "
                    "the function's folder with a relative path"
                ) from None
        try:
            return pack(folder, limits=limits)
        except BundleError as error:
            raise SourceRefused(f"the source was refused: {error}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
