"""Follows the policy file the platform writes; the authorization layer asks it for the policy.

The file is checked at most once per ``every`` seconds, when a request asks for the policy
(``current(now)``), so an idle replica does no work and a busy one does one ``stat`` a
second. A change is recognised by its (mtime, size, inode); the platform replaces the file
atomically (write + rename). A missing file means nobody may call yet; a file that does not
parse keeps the last good policy (or nobody, if there was none) and is reported once.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from fnmesh.platform.mesh.policy.decision import DENY_ALL, Policy, parse_policy
from fnmesh.platform.model.errors import ValidationError

log = logging.getLogger("fnmesh.mesh.policy")

_Version = tuple[int, int, int] | None


class PolicyFile:
    def __init__(self, path: Path, public_callers: frozenset[str], *, every: float = 1.0) -> None:
        self.path = path
        self.public_callers = public_callers
        self.every = every
        self._policy = DENY_ALL
        self._version: _Version | str = "unread"
        self._checked: float | None = None

    def current(self, now: float) -> Policy:
        """The policy in force, re-reading the file when ``every`` seconds have passed."""
        checked = self._checked
        if checked is None or now - checked >= self.every:
            self._checked = now
            self.refresh()
        return self._policy

    def refresh(self) -> None:
        """Read the file now if it changed since the last read."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            version: _Version = None
        except OSError as error:
            self._report(None, f"cannot read policy file {self.path}: {error}")
            return
        else:
            version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if version == self._version:
            return
        self._version = version
        if version is None:
            self._policy = _missing(self.path)
            log.warning("policy file %s does not exist: refusing every caller", self.path)
            return
        try:
            document = json.loads(self.path.read_bytes())
            policy = parse_policy(document, self.public_callers, source="policy file")
        except (OSError, ValueError) as error:
            self._report(version, _describe(self.path, error))
            return
        self._policy = policy
        log.info(
            "authorization policy loaded from %s: public=%s, %d allowed identities",
            self.path,
            policy.public,
            len(policy.allow),
        )

    def _report(self, version: _Version, message: str) -> None:
        kept = "keeping the previous policy" if self._policy is not DENY_ALL else "refusing all"
        log.error("%s (%s)", message, kept)
        if version is not None:
            self._version = version


def _missing(path: Path) -> Policy:
    return Policy(
        public=False,
        allow=frozenset(),
        callers=frozenset(),
        source="its policy file does not exist yet",
    )


def _describe(path: Path, error: Exception) -> str:
    if isinstance(error, ValidationError):
        return f"policy file {path}: {error}"
    if isinstance(error, json.JSONDecodeError):
        return f"policy file {path} is not JSON ({error}): write a JSON object"
    return f"cannot read policy file {path}: {error}"
