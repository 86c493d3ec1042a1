"""Taking over what pip wrote as the build user: a copy the platform owns, modes normalized.

pip's output folder belongs to the unprivileged build user, who may still hold open files
in it or keep a process running. So the platform never renames it into place: it copies
it, reading through directory file descriptors with ``O_NOFOLLOW`` (a folder swapped for a
symlink mid-copy cannot lead the copy out of the tree), into a fresh folder it owns.
Files become 0644 (0755 when any executable bit was set), folders 0755; symlinks are kept
only when they point inside the tree; devices, FIFOs and sockets are refused; the copy
stops at ``max_bytes`` / ``max_files``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from fnmesh.platform.build.bundle import BundleError, resolve
from fnmesh.platform.build.seal import DIR_MODE, EXEC_MODE, FILE_MODE

_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class AdoptRefused(Exception):
    """The installed tree cannot become an environment; the message says why."""


@dataclass
class _Budget:
    max_bytes: int
    max_files: int
    bytes: int = 0
    files: int = 0


def adopt_tree(source: Path, dest: Path, *, max_bytes: int, max_files: int) -> tuple[int, int]:
    """Copy ``source`` to ``dest`` (must not exist); returns (entries, bytes)."""
    budget = _Budget(max_bytes, max_files)
    links: dict[str, str] = {}
    folders = [dest]
    dest.mkdir(mode=0o700)
    fd = os.open(source, _DIR_FLAGS)
    try:
        _copy_folder(fd, dest, "", budget, links, folders)
    finally:
        os.close(fd)
    for path, target in links.items():
        try:
            inside = not target.startswith("/") and resolve(
                path.split("/")[:-1], target, links, path
            )
        except BundleError:
            inside = False
        if not inside:
            raise AdoptRefused(
                f"the installed file {path!r} is a symlink to {target!r}, outside the "
                "environment; the package cannot be used"
            )
    for folder in folders:
        os.chmod(folder, DIR_MODE)
    return budget.files, budget.bytes


def _copy_folder(
    fd: int, dest: Path, relative: str, budget: _Budget, links: dict[str, str], folders: list[Path]
) -> None:
    with os.scandir(fd) as scan:
        names = sorted(entry.name for entry in scan)
    for name in names:
        path = f"{relative}/{name}" if relative else name
        budget.files += 1
        if budget.files > budget.max_files:
            raise AdoptRefused(
                f"the environment has more than {budget.max_files} files "
                "(build.max_environment_files); install fewer packages"
            )
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        target = dest / name
        if stat.S_ISDIR(info.st_mode):
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                target.mkdir(mode=0o700)
                folders.append(target)
                _copy_folder(child, target, path, budget, links, folders)
            finally:
                os.close(child)
        elif stat.S_ISLNK(info.st_mode):
            link = os.readlink(name, dir_fd=fd)
            links[path] = link
            os.symlink(link, target)
        elif stat.S_ISREG(info.st_mode):
            _copy_file(fd, name, target, path, budget)
        else:
            raise AdoptRefused(
                f"the installed {path!r} is not a file, folder or symlink; the package "
                "cannot be used"
            )


def _copy_file(fd: int, name: str, target: Path, path: str, budget: _Budget) -> None:
    source = os.open(name, _FILE_FLAGS, dir_fd=fd)
    with open(source, "rb") as reader:
        info = os.fstat(reader.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise AdoptRefused(f"the installed {path!r} changed while it was copied")
        mode = EXEC_MODE if info.st_mode & 0o111 else FILE_MODE
        out_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(out_fd, "wb") as writer:
            while chunk := reader.read(_CHUNK):
                budget.bytes += len(chunk)
                if budget.bytes > budget.max_bytes:
                    raise AdoptRefused(
                        f"the environment is over {budget.max_bytes} bytes "
                        "(build.max_environment_bytes); install fewer or smaller packages"
                    )
                writer.write(chunk)
            os.fchmod(writer.fileno(), mode)
