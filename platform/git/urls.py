"""Where a function's repository lives: URL paths in, repository paths out (pure).

A function's remote is ``<api>/git/<name>.git`` in the default namespace and
``<api>/git/<namespace>/<name>.git`` in another. A function that lives in a sub-folder of
the repository adds it after the repository: ``<api>/git/<name>.git/services/hello``. git
appends ``/info/refs``, ``/git-upload-pack`` or ``/git-receive-pack`` to the remote URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fnmesh.platform.model.names import (
    DEFAULT_NAMESPACE,
    MAX_NAMESPACE_NAME,
    check_name,
)

MOUNT = "/git"
SUFFIX = ".git"
Endpoint = Literal["info/refs", "git-upload-pack", "git-receive-pack"]
ENDPOINTS: tuple[Endpoint, ...] = ("info/refs", "git-upload-pack", "git-receive-pack")
SERVICES = frozenset({"git-upload-pack", "git-receive-pack"})


class PathError(ValueError):
    """The URL names no repository; the message says what a repository URL looks like."""


@dataclass(frozen=True, slots=True)
class RepoRef:
    """A function's repository, and the folder of the repository that holds ``fn.yaml``."""

    namespace: str
    name: str
    subdir: str = ""  # '/'-separated, no empty, '.' or '..' parts; '' is the root

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def relative_dir(self) -> Path:
        """The bare repository's folder under the repositories' root."""
        return Path(self.namespace) / f"{self.name}{SUFFIX}"

    def path_info(self, endpoint: str) -> str:
        """The path ``git http-backend`` expects, relative to its project root."""
        return f"/{self.namespace}/{self.name}{SUFFIX}/{endpoint}"

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class GitRequestPath:
    repo: RepoRef
    endpoint: Endpoint


_HELP = (
    "a repository URL is <api>/git/NAME.git or <api>/git/NAMESPACE/NAME.git "
    "(`fn git-remote NAME` prints it)"
)


def parse_request_path(path: str) -> GitRequestPath:
    """``path`` below the mount (``/hello.git/info/refs``); raises PathError."""
    for endpoint in ENDPOINTS:
        if path.endswith("/" + endpoint):
            repo = parse_repo_path(path[: -len(endpoint) - 1])
            return GitRequestPath(repo, endpoint)
    raise PathError(f"{path!r} is not a git smart-HTTP endpoint: {_HELP}")


def parse_repo_path(path: str) -> RepoRef:
    """``/hello.git``, ``/team/hello.git`` or either followed by a sub-folder."""
    parts = path.strip("/").split("/")
    at = next((i for i, part in enumerate(parts) if part.endswith(SUFFIX)), None)
    if at is None or at > 1:
        raise PathError(f"{path!r} names no repository: {_HELP}")
    name = parts[at][: -len(SUFFIX)]
    namespace = parts[0] if at == 1 else DEFAULT_NAMESPACE
    problem = check_name(name, what="function name") or check_name(
        namespace, what="namespace", limit=MAX_NAMESPACE_NAME
    )
    if problem is not None:
        raise PathError(f"{problem}; {_HELP}")
    return RepoRef(namespace, name, check_subdir("/".join(parts[at + 1 :])))


def check_subdir(subdir: str) -> str:
    """``subdir`` in normal form; raises PathError when it could leave the repository."""
    parts = [part for part in subdir.strip("/").split("/") if part]
    for part in parts:
        if part in (".", "..") or "\\" in part or any(ord(c) < 32 for c in part):
            raise PathError(
                f"sub-folder {subdir!r}: use a plain relative path inside the repository "
                "(no '.', '..', backslashes or control characters)"
            )
    return "/".join(parts)


def remote_url(api: str, namespace: str, name: str, subdir: str = "") -> str:
    """The git remote of a function: what ``fn git-remote`` prints and adds."""
    base = api.rstrip("/") + MOUNT
    repo = f"{name}{SUFFIX}" if namespace == DEFAULT_NAMESPACE else f"{namespace}/{name}{SUFFIX}"
    tail = "/".join(quote(part, safe="") for part in check_subdir(subdir).split("/") if part)
    return f"{base}/{repo}/{tail}" if tail else f"{base}/{repo}"
