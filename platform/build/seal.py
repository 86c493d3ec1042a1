"""Sealed trees: a manifest of per-file hashes written at build time, checked before use.

An artifact (``artifacts/<hex>/``) or a dependency environment (``envs/<key>/``) is sealed
once, when the platform has finished writing it and before it is renamed into place: the
manifest ``<tree>.manifest`` (beside the tree, never inside it, so the function does not
see it) lists every folder, file and symlink with its mode, size and sha256 (or link
target), and the tree digest those entries give. Because that digest is computed from the
entries themselves, an artifact's manifest cannot be forged for another digest.

``TreeVerifier.verify`` compares the tree on disk with its manifest: the same paths of the
same kinds, owned by the platform, modes exactly as sealed (never group- or
other-writable), the same sizes, contents and link targets. A full check reads every byte.
A verifier remembers the trees it found intact by a fingerprint of ``lstat`` results
(inode, size, mtime, ctime, mode, owner of every entry and of the manifest); while the
fingerprint is unchanged it answers without reading a byte. ctime cannot be set from user
space, so rewriting a file and restoring its mtime still changes the fingerprint.
Cost: a cached check is one directory walk with one ``lstat`` per entry (about 3-10 us
each, a few ms for a thousand files); a full check adds reading and hashing every file
(about 1 GB/s).

``verify_artifact(path, digest)`` is the hook the runtime calls before starting a replica.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fnmesh.platform.build.digest import TreeEntry, digest_hex, tree_digest

MANIFEST_SUFFIX = ".manifest"
_FORMAT = 1
_CHUNK = 1 << 20
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755


class TreeTampered(Exception):
    """The tree on disk differs from its sealed manifest (or has none); the message says how."""


@dataclass(frozen=True, slots=True)
class SealedEntry:
    path: str  # relative, '/'-separated
    kind: Literal["file", "dir", "symlink"]
    mode: int  # permission bits (0 for symlinks)
    size: int
    content: str  # sha256 hex of a file, the target of a symlink, "" for a folder


def manifest_path(tree: Path) -> Path:
    return tree.with_name(tree.name + MANIFEST_SUFFIX)


def _hash_file(path: Path) -> str:
    hashed = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb") as source:
        while chunk := source.read(_CHUNK):
            hashed.update(chunk)
    return hashed.hexdigest()


def _walk(tree: Path) -> list[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every entry under ``tree``, the tree itself as ''."""
    found = [("", os.lstat(tree))]
    pending = [("", tree)]
    while pending:
        relative, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                path = f"{relative}/{entry.name}" if relative else entry.name
                info = entry.stat(follow_symlinks=False)
                found.append((path, info))
                if stat.S_ISDIR(info.st_mode):
                    pending.append((path, Path(entry.path)))
    return found


def scan_tree(tree: Path) -> list[SealedEntry]:
    """What the tree holds now, hashing every file; the tree itself is not listed."""
    entries = []
    for path, info in _walk(tree):
        if not path:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            entries.append(SealedEntry(path, "dir", mode, 0, ""))
        elif stat.S_ISLNK(info.st_mode):
            entries.append(SealedEntry(path, "symlink", 0, 0, os.readlink(tree / path)))
        elif stat.S_ISREG(info.st_mode):
            entries.append(SealedEntry(path, "file", mode, info.st_size, _hash_file(tree / path)))
        else:
            raise TreeTampered(f"{tree}: {path!r} is not a file, folder or symlink")
    return sorted(entries, key=lambda e: e.path)


def entries_digest(entries: list[SealedEntry]) -> str:
    """The tree digest (as ``digest.tree_digest``) of the files and symlinks in ``entries``."""
    return tree_digest(
        TreeEntry(e.path, e.kind, bool(e.mode & 0o111), e.content)
        for e in entries
        if e.kind != "dir"
    )


def seal(tree: Path) -> str:
    """Write ``<tree>.manifest`` for the finished ``tree``; returns the tree's digest.

    Call it before the tree is renamed into place, on a tree only the platform can write.
    The manifest is written to a scratch name and renamed, so it is whole or absent.
    """
    entries = scan_tree(tree)
    digest = entries_digest(entries)
    body = {
        "format": _FORMAT,
        "digest": digest,
        "entries": [[e.path, e.kind, e.mode, e.size, e.content] for e in entries],
    }
    target = manifest_path(tree)
    scratch = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w", encoding="utf-8") as out:
        json.dump(body, out, separators=(",", ":"))
        os.fchmod(out.fileno(), FILE_MODE)
    os.replace(scratch, target)
    return digest


def move_seal(tree: Path, final: Path) -> None:
    """Move the manifest written for ``tree`` (in scratch) to be ``final``'s."""
    os.replace(manifest_path(tree), manifest_path(final))


def read_manifest(tree: Path) -> tuple[str, list[SealedEntry]]:
    path = manifest_path(tree)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TreeTampered(f"{tree} has no manifest ({path.name}); it was not sealed") from None
    except OSError as error:
        raise TreeTampered(f"cannot read the manifest of {tree}: {error}") from None
    with open(fd, encoding="utf-8") as source:
        try:
            body = json.load(source)
            digest = str(body["digest"])
            entries = [
                SealedEntry(str(p), k, int(m), int(s), str(c)) for p, k, m, s, c in body["entries"]
            ]
        except (ValueError, KeyError, TypeError) as error:
            raise TreeTampered(f"the manifest of {tree} is damaged: {error}") from None
    if body.get("format") != _FORMAT:
        raise TreeTampered(f"the manifest of {tree} has unknown format {body.get('format')!r}")
    return digest, entries


_MANIFEST_KEY = "/manifest"  # no relative path starts with '/'
_Fingerprint = tuple[tuple[str, int, int, int, int, int, int], ...]


def _fingerprint(tree: Path) -> _Fingerprint:
    stats = _walk(tree)
    stats.append((_MANIFEST_KEY, os.lstat(manifest_path(tree))))
    return tuple(
        (p, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_mode, s.st_uid)
        for p, s in sorted(stats, key=lambda item: item[0])
    )


class TreeVerifier:
    """Checks sealed trees; remembers intact ones by fingerprint. Thread-safe."""

    def __init__(self, owner: int | None = None) -> None:
        self.owner = os.geteuid() if owner is None else owner
        self._intact: dict[Path, tuple[_Fingerprint, str]] = {}
        self._lock = threading.Lock()
        self.full_checks = 0  # how many checks read every byte (for tests and metrics)

    def verify(self, tree: Path, digest: str | None = None) -> str:
        """The tree's digest when it is intact (and equals ``digest`` if given).

        Raises TreeTampered naming the first difference.
        """
        try:
            fingerprint = _fingerprint(tree)
        except FileNotFoundError:
            if not tree.is_dir():
                raise TreeTampered(f"{tree} does not exist") from None
            raise TreeTampered(
                f"{tree} has no manifest ({manifest_path(tree).name}): it was not sealed"
            ) from None
        with self._lock:
            known = self._intact.get(tree)
        if known is not None and known[0] == fingerprint:
            found = known[1]
        else:
            found = self._full_check(tree, fingerprint)
            with self._lock:
                self._intact[tree] = (fingerprint, found)
        if digest is not None and found != digest:
            raise TreeTampered(f"{tree} holds {found}, not {digest}")
        return found

    def forget(self, tree: Path) -> None:
        with self._lock:
            self._intact.pop(tree, None)

    def _full_check(self, tree: Path, fingerprint: _Fingerprint) -> str:
        self.full_checks += 1
        sealed_digest, sealed = read_manifest(tree)
        if entries_digest(sealed) != sealed_digest:
            raise TreeTampered(f"the manifest of {tree} does not add up to {sealed_digest}")
        for path, _, _, _, _, mode, uid in fingerprint:
            where = manifest_path(tree).name if path == _MANIFEST_KEY else path or "the folder"
            if uid != self.owner:
                raise TreeTampered(f"{tree}: {where} is owned by uid {uid}, not the platform")
            if not stat.S_ISLNK(mode) and mode & 0o022:
                raise TreeTampered(f"{tree}: {where} is writable by others ({oct(mode)})")
        root = os.lstat(tree)
        if not stat.S_ISDIR(root.st_mode) or stat.S_IMODE(root.st_mode) != DIR_MODE:
            raise TreeTampered(f"{tree} is not a folder with mode 0755")
        found = {e.path: e for e in scan_tree(tree)}
        for entry in sealed:
            here = found.pop(entry.path, None)
            if here is None:
                raise TreeTampered(f"{tree}: {entry.path!r} is missing")
            if here.kind != entry.kind:
                raise TreeTampered(f"{tree}: {entry.path!r} is a {here.kind}, not a {entry.kind}")
            if here.mode != entry.mode:
                raise TreeTampered(
                    f"{tree}: {entry.path!r} has mode {oct(here.mode)}, not {oct(entry.mode)}"
                )
            if here.size != entry.size or here.content != entry.content:
                raise TreeTampered(f"{tree}: {entry.path!r} was changed after the build")
        if found:
            raise TreeTampered(f"{tree}: {sorted(found)[0]!r} was added after the build")
        return sealed_digest


_DEFAULT = TreeVerifier()


def verify_artifact(path: Path, digest: str) -> None:
    """Raise TreeTampered unless ``path`` is the intact, sealed artifact of ``digest``.

    For the runtime, before a replica starts: cached checks cost one ``lstat`` per file.
    """
    if path.name != digest_hex(digest):
        raise TreeTampered(f"{path} is not where the artifact {digest} lives")
    _DEFAULT.verify(path, digest)


def verify_environment(path: Path) -> None:
    """Raise TreeTampered unless ``path`` is an intact, sealed dependency environment."""
    _DEFAULT.verify(path)
