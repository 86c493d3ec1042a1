"""Previews of branches: the artifact built from a branch's head, recorded per tag.

A push to a branch other than ``main`` builds the commit and records the artifact under
``<repo>/fnmesh/previews/<tag>.json``; deleting the branch removes the record. Serving a
preview at its tag URL needs traffic tags in the routing, which read these records.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Preview:
    branch: str
    tag: str
    commit: str
    build: str
    digest: str
    environment: str | None
    handler: str


class PreviewRecords:
    def __init__(self, repo: Path) -> None:
        self.folder = repo / "fnmesh" / "previews"

    def _path(self, tag: str) -> Path:
        return self.folder / f"{tag}.json"

    def all(self) -> list[Preview]:
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append(Preview(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a record written by another version: not a preview we can use
        return found

    def get(self, tag: str) -> Preview | None:
        return next((p for p in self.all() if p.tag == tag), None)

    def owners(self) -> dict[str, str]:
        """Tag -> branch of every recorded preview."""
        return {p.tag: p.branch for p in self.all()}

    def save(self, preview: Preview) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(preview.tag)
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(asdict(preview), indent=2) + "\n")
        os.replace(scratch, path)

    def remove(self, tag: str) -> bool:
        try:
            self._path(tag).unlink()
        except FileNotFoundError:
            return False
        return True
