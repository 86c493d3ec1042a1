"""One unprivileged uid per function, never the platform's, kept across restarts.

The uids come from a range no system account uses (by default 6,000,000 upwards, past
the subordinate ranges distributions hand out) and are recorded in a small JSON file in
the platform home; the file is rewritten atomically, and only the platform, which holds
the home's lock, writes it. A function's gid is its uid: it shares a group with no one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

FIRST = 6_000_000
SIZE = 1_000_000


def allocate(taken: Mapping[str, int], key: str, first: int = FIRST, size: int = SIZE) -> int:
    """The uid for ``key``: the one it has, else the lowest free one (pure)."""
    if key in taken:
        return taken[key]
    used = set(taken.values())
    for uid in range(first, first + size):
        if uid not in used:
            return uid
    raise OverflowError(f"no free uid left in {first}..{first + size - 1}")


class UidBook:
    """The function -> uid record of one platform home."""

    def __init__(self, path: Path, first: int = FIRST) -> None:
        self.path = path
        self.first = first
        try:
            data = json.loads(path.read_text())
            self._uids = {str(k): int(v) for k, v in data.items()}
        except FileNotFoundError:
            self._uids = {}

    def uid(self, namespace: str, function: str) -> int:
        key = f"{namespace}/{function}"
        uid = allocate(self._uids, key, self.first)
        if key not in self._uids:
            self._uids[key] = uid
            self._save()
        return uid

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.path.with_suffix(".partial")
        with partial.open("w") as out:
            json.dump(self._uids, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self.path)
