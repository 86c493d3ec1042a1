"""Writing a checked bundle to disk, hashing as it goes.

Only ever called after ``check_bundle`` accepted the same bytes, into a fresh folder; the
writes still refuse to follow links (``O_NOFOLLOW``, ``O_EXCL``) as a second line of defence.
Files get mode 0644, or 0755 when any executable bit was set; folders 0755; nothing keeps a
setuid, setgid or sticky bit.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from fnmesh.platform.build.bundle import (
    DEFAULT_LIMITS,
    BuildLimits,
    Bundle,
    iter_members,
    normalize_path,
    open_tar,
)
from fnmesh.platform.build.digest import TreeEntry, tree_digest

_CHUNK = 1 << 20
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755


def _contents(
    tar: tarfile.TarFile,
) -> Iterator[tuple[str, tarfile.TarInfo, IO[bytes] | None]]:
    for info in iter_members(tar):
        path = normalize_path(info.name)
        if not path or info.isdir():
            continue
        if info.issym():
            yield path, info, None
            continue
        source = tar.extractfile(info)
        assert source is not None  # check_bundle admits regular files and symlinks only
        with source:
            yield path, info, source


def _entry(path: str, info: tarfile.TarInfo, content: str) -> TreeEntry:
    if info.issym():
        return TreeEntry(path, "symlink", False, info.linkname)
    return TreeEntry(path, "file", bool(info.mode & 0o111), content)


def bundle_digest(data: Bundle, limits: BuildLimits = DEFAULT_LIMITS) -> str:
    """The digest a build of this (already checked) bundle would have; writes nothing."""
    entries = []
    with open_tar(data, limits) as tar:
        for path, info, source in _contents(tar):
            hashed = hashlib.sha256()
            if source is not None:
                while chunk := source.read(_CHUNK):
                    hashed.update(chunk)
            entries.append(_entry(path, info, hashed.hexdigest()))
    return tree_digest(entries)


def extract_bundle(data: Bundle, limits: BuildLimits, dest: Path) -> tuple[str, int, int]:
    """Write the bundle's files and links under ``dest`` (created with its parents; must not exist).

    Returns (digest, number of entries, bytes written).
    """
    dest.mkdir(mode=DIR_MODE, parents=True)
    folders = {dest}
    entries = []
    written = 0
    with open_tar(data, limits) as tar:
        for path, info, source in _contents(tar):
            target = dest.joinpath(*path.split("/"))
            _make_parents(dest, target.parent, folders)
            if source is None:
                os.symlink(info.linkname, target)
                entries.append(_entry(path, info, ""))
                continue
            hashed = hashlib.sha256()
            mode = EXEC_MODE if info.mode & 0o111 else FILE_MODE
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(target, flags, 0o600)
            with open(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    hashed.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                os.fchmod(out.fileno(), mode)
            entries.append(_entry(path, info, hashed.hexdigest()))
    for folder in folders:
        os.chmod(folder, DIR_MODE)
    return tree_digest(entries), len(entries), written


def _make_parents(dest: Path, folder: Path, made: set[Path]) -> None:
    missing = []
    while folder not in made:
        missing.append(folder)
        folder = folder.parent
        if folder == dest.parent:
            raise ValueError(f"{folder} is outside {dest}")  # check_bundle prevents this
    for folder in reversed(missing):
        if folder.is_symlink():
            raise ValueError(f"{folder} is a symlink")  # check_bundle prevents this
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        made.add(folder)
