"""The content address of a source tree: ``sha256:<hex>`` over its normalized file set.

A tree is its files (path, executable bit, content) and symlinks (path, target). Modes
other than the executable bit, owners, times, directory entries and the archive format do
not count, so the same folder packed twice, or by another tool, has the same digest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str
    kind: Literal["file", "symlink"]
    executable: bool
    content: str  # sha256 hex of a file's bytes, or a symlink's target


def tree_digest(entries: Iterable[TreeEntry]) -> str:
    """``sha256:<hex>``; paths and targets never hold NUL, so NUL-separated fields are exact."""
    total = hashlib.sha256(b"fnmesh-tree-v1\0")
    for entry in sorted(entries, key=lambda e: e.path.encode("utf-8", "surrogateescape")):
        kind = "l" if entry.kind == "symlink" else "x" if entry.executable else "f"
        for field in (kind, entry.path, entry.content):
            total.update(field.encode("utf-8", "surrogateescape") + b"\0")
    return PREFIX + total.hexdigest()


def digest_hex(digest: str) -> str:
    """The hex part of ``sha256:<hex>`` (a bare hex is accepted); raises ValueError."""
    hexpart = digest.removeprefix(PREFIX)
    if not _HEX.fullmatch(hexpart):
        raise ValueError(
            f"digest {digest!r} is not 'sha256:' followed by 64 lowercase hex digits; "
            "copy it from the build result or the revision's artifact"
        )
    return hexpart
