"""A pushed commit's tree as a source bundle, packed exactly as ``fn deploy`` packs a folder.

The tree (or the remote's sub-folder of it) is archived by git, unpacked into scratch space
and packed with the builder's ``pack``, so ``.fnignore``/``.gitignore`` rules, the always
skipped files and every bundle check are the same for a push and for ``fn deploy``.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from fnmesh.platform.build import BuildLimits, BundleError, pack
from fnmesh.platform.git.repos import Objects, Repositories
from fnmesh.platform.model.manifest import MANIFEST_FILE

_TAR_OVERHEAD = 1024  # tar headers per entry, on top of the file contents


class SourceRefused(Exception):
    """The commit cannot be deployed as it is; the message says what is missing or wrong."""


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
    archive = await repos.archive(objects, tree)
    ceiling = limits.max_unpacked_bytes + _TAR_OVERHEAD * (limits.max_files + 1)
    if len(archive) > ceiling:
        raise SourceRefused(
            f"commit {short} holds more than {limits.max_unpacked_bytes} bytes of source "
            "(build.max_unpacked_bytes): leave large files out of the function's folder"
        )
    return await asyncio.to_thread(repack, archive, scratch, limits)


def repack(archive: bytes, scratch: Path, limits: BuildLimits) -> bytes:
    """Unpack git's tar into scratch space and pack the folder as ``fn deploy`` would."""
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="push-", dir=scratch))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
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
