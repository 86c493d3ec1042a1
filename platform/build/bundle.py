"""Source bundles: checking a tar (plain or gzip) before anything touches the disk.

A bundle is refused, with a ``BundleError`` naming the member and the fix, when it holds an
absolute path, a ``..`` component, a NUL or a backslash in a path, a name that is not UTF-8,
a duplicate path, a path through a symlink or under a file, a symlink whose target leaves
the bundle (followed through the bundle's own links), any hard link (hard links are never
accepted: store a copy or a relative symlink instead), a device file or FIFO, or when it
goes over ``BuildLimits``. Directories are implied by the files under them; explicit
directory entries are accepted and otherwise ignored (like git, the artifact holds files
and links only).

Reading is bounded: a gzip stream is never inflated past what the limits allow. A bundle
is its bytes, or the path of a file holding them (an upload spooled to disk).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Bundle = bytes | Path  # the bundle's bytes, or a file holding them
GZIP_MAGIC = b"\x1f\x8b"
_MAX_LINK_DEPTH = 40
_HEADER_ALLOWANCE = 4096  # tar header, pax record and padding per member


@dataclass(frozen=True, slots=True)
class BuildLimits:
    max_bundle_bytes: int = 50 * 1024 * 1024  # compressed/raw upload size
    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_files: int = 10_000


DEFAULT_LIMITS = BuildLimits()


@dataclass(frozen=True, slots=True)
class BundleMember:
    path: str  # normalized: relative, '/'-separated, no '.' or empty components
    kind: Literal["file", "dir", "symlink"]
    size: int
    executable: bool
    target: str | None = None  # the link target of a symlink


class BundleError(ValueError):
    """The bundle is refused; the message names the member and how to fix it."""

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.member = member


def quote(text: str) -> str:
    """``text`` in double quotes, with control characters and undecodable bytes escaped."""
    return json.dumps(text.encode("utf-8", "backslashreplace").decode("utf-8"), ensure_ascii=False)


def _refuse(name: str, problem: str) -> BundleError:
    return BundleError(f"bundle member {quote(name)}: {problem}", name)


def _limit_hint(field: str) -> str:
    return f"or raise build.{field} in the platform's config.yaml"


def normalize_path(name: str) -> str:
    """The member path in normal form ('' for the bundle root); raises BundleError."""
    if "\x00" in name:
        raise _refuse(name, "the path contains a NUL character; rename the file")
    if "\\" in name:
        raise _refuse(
            name,
            "the path contains a backslash; use '/' between folders and "
            "rename files with '\\' in their name",
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(name, "the path is not valid UTF-8; rename the file") from None
    if name.startswith("/"):
        raise _refuse(
            name, "absolute paths are not allowed; store paths relative to the function folder"
        )
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refuse(name, 'paths must stay inside the bundle; remove the ".." component')
    return "/".join(parts)


class _BoundedReader(io.RawIOBase):
    """A seekable view of the (decompressed) tar that refuses to go past ``cap`` bytes."""

    def __init__(self, inner: io.BufferedIOBase | gzip.GzipFile, cap: int, limits: BuildLimits):
        self._inner = inner
        self._cap = cap
        self._limits = limits

    def _over(self) -> BundleError:
        return BundleError(
            f"the bundle unpacks to more than {self._limits.max_unpacked_bytes} bytes "
            f"(build.max_unpacked_bytes); leave large files out with .fnignore "
            f"{_limit_hint('max_unpacked_bytes')}"
        )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._inner.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("only absolute and relative seeks")
        if offset > self._cap:
            raise self._over()
        try:
            return self._inner.seek(offset)
        except (OSError, EOFError, zlib.error) as error:  # a broken gzip stream
            raise _corrupt(error) from None

    def read(self, size: int | None = -1) -> bytes:
        room = self._cap - self._inner.tell()
        want = room + 1 if size is None or size < 0 else min(size, room + 1)
        try:
            data = self._inner.read(want)
        except (OSError, EOFError, zlib.error) as error:  # a broken gzip stream
            raise _corrupt(error) from None
        if self._inner.tell() > self._cap:
            raise self._over()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def bundle_size(data: Bundle) -> int:
    return data.stat().st_size if isinstance(data, Path) else len(data)


@contextmanager
def open_tar(data: Bundle, limits: BuildLimits) -> Iterator[tarfile.TarFile]:
    """Open the bundle for reading; size and corruption problems become BundleError."""
    size = bundle_size(data)
    if size > limits.max_bundle_bytes:
        raise BundleError(
            f"the bundle is {size} bytes, more than build.max_bundle_bytes "
            f"({limits.max_bundle_bytes}); leave large files out with .fnignore "
            f"{_limit_hint('max_bundle_bytes')}"
        )
    if not size:
        raise BundleError("the bundle is empty; send a tar or tar.gz of the function folder")
    raw: io.BufferedIOBase = (
        open(data, "rb") if isinstance(data, Path) else io.BytesIO(data)  # noqa: SIM115
    )
    magic = raw.read(2)
    raw.seek(0)
    inner: io.BufferedIOBase | gzip.GzipFile = (
        gzip.GzipFile(fileobj=raw, mode="rb") if magic == GZIP_MAGIC else raw
    )
    cap = limits.max_unpacked_bytes + _HEADER_ALLOWANCE * (limits.max_files + 4) + (1 << 20)
    reader = _BoundedReader(inner, cap, limits)
    try:
        try:
            tar = tarfile.open(  # noqa: SIM115 (closed by the with block below)
                fileobj=reader, mode="r:", encoding="utf-8", errors="surrogateescape"
            )
        except tarfile.TarError as error:
            raise _corrupt(error) from None
        with tar:
            try:
                yield tar
            except tarfile.TarError as error:  # read errors only: writes never raise TarError
                raise _corrupt(error) from None
    finally:
        inner.close()
        raw.close()


def _corrupt(error: BaseException) -> BundleError:
    return BundleError(
        f"the bundle is not a valid tar or tar.gz archive ({error}); pack the function "
        "folder again ('fn deploy' does it, or 'tar czf bundle.tgz -C DIR .')"
    )


def iter_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Members one at a time, so a limit stops reading at the first offending header."""
    while (info := tar.next()) is not None:
        yield info


class _Scan:
    def __init__(self, limits: BuildLimits) -> None:
        self.limits = limits
        self.members: dict[str, BundleMember] = {}
        self.total = 0
        self.count = 0

    def add(self, info: tarfile.TarInfo) -> BundleMember | None:
        path = normalize_path(info.name)
        if info.islnk():
            raise _refuse(
                info.name,
                "hard links are not accepted; store a copy of the file "
                "(tar --hard-dereference) or a relative symlink",
            )
        if info.ischr() or info.isblk() or info.isfifo():
            raise _refuse(
                info.name,
                "device files and FIFOs cannot be deployed; remove it or add it to .fnignore",
            )
        if not (info.isreg() or info.isdir() or info.issym()):
            raise _refuse(
                info.name,
                f"unsupported tar entry type {info.type!r}; store only "
                "files, folders and relative symlinks",
            )
        if not path:
            if info.isdir():
                return None  # the bundle root, "./"
            raise _refuse(info.name, "a file needs a name; repack the folder")
        self.count += 1
        if self.count > self.limits.max_files:
            raise _refuse(
                info.name,
                f"the bundle has more than {self.limits.max_files} entries "
                "(build.max_files); leave files out with .fnignore "
                f"{_limit_hint('max_files')}",
            )
        size = info.size if info.isreg() else 0
        self.total += size
        if size > self.limits.max_unpacked_bytes or self.total > self.limits.max_unpacked_bytes:
            what = "the file is" if size > self.limits.max_unpacked_bytes else "the bundle is"
            raise _refuse(
                info.name,
                f"{what} over build.max_unpacked_bytes "
                f"({self.limits.max_unpacked_bytes} bytes unpacked); leave "
                f"large files out with .fnignore "
                f"{_limit_hint('max_unpacked_bytes')}",
            )
        if path in self.members:
            raise _refuse(
                info.name,
                f"the path {quote(path)} appears twice in the bundle; repack it "
                "so every path appears once",
            )
        target = None
        if info.issym():
            target = info.linkname
            if not target or "\x00" in target or "\\" in target:
                raise _refuse(
                    info.name,
                    "the symlink target is empty or holds a NUL or a "
                    "backslash; point it at a file in the bundle",
                )
            if target.startswith("/"):
                raise _refuse(
                    info.name,
                    f"symlink target {quote(target)} leaves the bundle; "
                    "symlinks must point inside the bundle with a "
                    "relative path (or store a copy of the file)",
                )
        kind: Literal["file", "dir", "symlink"] = (
            "file" if info.isreg() else "dir" if info.isdir() else "symlink"
        )
        member = BundleMember(path, kind, size, bool(info.mode & 0o111) and kind == "file", target)
        self.members[path] = member
        return member

    def finish(self) -> None:
        links = {m.path: m.target or "" for m in self.members.values() if m.kind == "symlink"}
        for member in self.members.values():
            parts = member.path.split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                above = self.members.get(parent)
                if above is not None and above.kind == "file":
                    raise _refuse(
                        member.path,
                        f"its folder {quote(parent)} is a file in the bundle; rename one of them",
                    )
                if above is not None and above.kind == "symlink":
                    raise _refuse(
                        member.path,
                        f"the path goes through the symlink {quote(parent)}; "
                        "store the file under the link's target instead",
                    )
        for path, target in links.items():
            if resolve(path.split("/")[:-1], target, links, path) is None:
                raise _refuse(
                    path,
                    f"symlink target {quote(target)} leaves the bundle; point it "
                    "at a file inside the bundle or store a copy of the file",
                )


def resolve(
    base: list[str], target: str, links: dict[str, str], name: str, depth: int = 0
) -> list[str] | None:
    """Walk ``target`` from folder ``base``, following the bundle's own links.

    Returns the resolved path components, or None when the walk leaves the bundle.
    """
    if depth > _MAX_LINK_DEPTH:
        raise _refuse(name, "symlinks form a loop; point the link at a file")
    parts = list(base)
    for component in target.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(component)
        here = "/".join(parts)
        if here in links:
            found = resolve(parts[:-1], links[here], links, name, depth + 1)
            if found is None:
                return None
            parts = found
    return parts


def check_bundle(data: Bundle, limits: BuildLimits) -> list[BundleMember]:
    """Every member of the bundle, in archive order; raises BundleError when it is refused."""
    scan = _Scan(limits)
    found: list[BundleMember] = []
    with open_tar(data, limits) as tar:
        for info in iter_members(tar):
            member = scan.add(info)
            if member is not None:
                found.append(member)
    scan.finish()
    return found


def read_member(data: Bundle, path: str, limits: BuildLimits) -> bytes | None:
    """The content of file ``path`` (e.g. ``"fn.yaml"``), following the bundle's symlinks.

    None when the bundle has no such file; BundleError when the bundle is refused or the
    path names a folder.
    """
    members = {m.path: m for m in check_bundle(data, limits)}
    links = {m.path: m.target or "" for m in members.values() if m.kind == "symlink"}
    resolved = resolve([], path, links, path)
    if resolved is None:
        return None
    wanted = "/".join(resolved)
    member = members.get(wanted)
    implied_folder = member is None and any(m.startswith(wanted + "/") for m in members)
    if member is None and not implied_folder:
        return None
    if implied_folder or (member is not None and member.kind != "file"):
        raise _refuse(path, "is a folder in the bundle; expected a file")
    with open_tar(data, limits) as tar:
        for info in iter_members(tar):
            if info.isreg() and normalize_path(info.name) == wanted:
                source = tar.extractfile(info)
                assert source is not None  # regular files always have content
                with source:
                    return source.read()
    return None
