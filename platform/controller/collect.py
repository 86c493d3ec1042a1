"""Which old revisions to delete (pure).

A function keeps at most ``keep`` revisions; beyond that the oldest go first. Never one
that carries traffic or a tag, the newest one, or one the rollout names (canary or
stable). A branch preview (label ``fnmesh.dev/preview``) goes as soon as its tag is gone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from fnmesh.platform.model import Revision
from fnmesh.platform.model.names import revision_number
from fnmesh.platform.model.resources import LABEL_PREVIEW

DEFAULT_KEEP = 10


def collect(revisions: Sequence[Revision], protected: Collection[str], keep: int) -> list[str]:
    """Names of the revisions to delete, oldest first."""
    ordered = sorted(revisions, key=lambda r: revision_number(r.name) or 0)
    doomed = [
        r.name for r in ordered if r.name not in protected and r.metadata.labels.get(LABEL_PREVIEW)
    ]
    excess = len(ordered) - len(doomed) - max(keep, 1)
    for revision in ordered:
        if excess <= 0:
            break
        if revision.name in protected or revision.name in doomed:
            continue
        doomed.append(revision.name)
        excess -= 1
    return doomed
