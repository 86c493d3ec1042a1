"""Packing a function folder into a bundle: a deterministic gzip tar.

Honours ``.gitignore`` and ``.fnignore`` in every folder (see ``ignore``) and always skips
``.git``, ``__pycache__``, ``.venv`` and ``*.pyc``. Entries are sorted, times are 0, owners
are 0 and modes are 0644 or 0755, so the same folder packs to the same bytes every time.
Symlinks are stored as links (they must stay inside the folder); sockets, FIFOs and devices
are left out; empty folders are not stored.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

from fnmesh.platform.build.bundle import (
    DEFAULT_LIMITS,
    BuildLimits,
    BundleError,
    check_bundle,
    quote,
)
from fnmesh.platform.build.ignore import IGNORE_FILES, IgnoreRules, parse_patterns

_HINT = "leave files out with .fnignore or raise build.{} in the platform's config.yaml"


def pack(folder: Path, *, limits: BuildLimits = DEFAULT_LIMITS) -> bytes:
    """The folder as a gzip tar; raises BundleError when it would be refused by the builder."""
    if not folder.is_dir():
        raise BundleError(f"{quote(str(folder))} is not a folder; give the function's folder")
    packer = _Packer(folder, limits)
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        packer.walk(tar, folder, "", IgnoreRules())
    data = raw.getvalue()
    if len(data) > limits.max_bundle_bytes:
        raise BundleError(
            f"the packed folder is {len(data)} bytes, more than build.max_bundle_bytes "
            f"({limits.max_bundle_bytes}); " + _HINT.format("max_bundle_bytes")
        )
    check_bundle(data, limits)  # the same verdict the builder will give (e.g. escaping links)
    return data


class _Packer:
    def __init__(self, root: Path, limits: BuildLimits) -> None:
        self.root = root
        self.limits = limits
        self.count = 0
        self.total = 0

    def walk(self, tar: tarfile.TarFile, folder: Path, prefix: str, rules: IgnoreRules) -> None:
        own = []
        for name in IGNORE_FILES:
            source = folder / name
            if source.is_file():
                own.extend(parse_patterns(source.read_text(errors="replace"), prefix.rstrip("/")))
        if own:
            rules = rules.below(own)
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            path = f"{prefix}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            is_folder = stat.S_ISDIR(info.st_mode)
            if rules.ignored(path, is_folder=is_folder):
                continue
            if is_folder:
                self.walk(tar, Path(entry.path), path + "/", rules)
            elif stat.S_ISLNK(info.st_mode):
                self.add(tar, path, tarfile.SYMTYPE, linkname=os.readlink(entry.path))
            elif stat.S_ISREG(info.st_mode):
                content = Path(entry.path).read_bytes()
                mode = 0o755 if info.st_mode & 0o111 else 0o644
                self.add(tar, path, tarfile.REGTYPE, content=content, mode=mode)

    def add(
        self,
        tar: tarfile.TarFile,
        path: str,
        kind: bytes,
        *,
        content: bytes = b"",
        mode: int = 0o777,
        linkname: str = "",
    ) -> None:
        self.count += 1
        if self.count > self.limits.max_files:
            raise BundleError(
                f"{quote(path)}: the folder has more than {self.limits.max_files} files "
                "(build.max_files); " + _HINT.format("max_files"),
                path,
            )
        self.total += len(content)
        if self.total > self.limits.max_unpacked_bytes:
            raise BundleError(
                f"{quote(path)}: the folder holds more than {self.limits.max_unpacked_bytes} "
                "bytes (build.max_unpacked_bytes); " + _HINT.format("max_unpacked_bytes"),
                path,
            )
        info = tarfile.TarInfo(path)
        info.type = kind
        info.mode = mode
        info.size = len(content)
        info.linkname = linkname
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(content) if kind == tarfile.REGTYPE else None)
