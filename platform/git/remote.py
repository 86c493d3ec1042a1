"""The client side of git push deploys: the ``fn`` remote and git's credential helper.

``set_up_remote`` adds (or points) the remote ``fn`` of a work tree at a function's
repository and registers ``fn git-credential`` as the credential helper for the platform's
API URL only, so the token never lands in the repository's config: git asks the helper,
which reads the token from the CLI context, whenever the platform answers 401.

Standard library only: the CLI imports this module.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REMOTE = "fn"
USERNAME = "fn"


class RemoteError(Exception):
    """git could not be set up; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RemoteSetup:
    url: str
    work_tree: Path | None  # None: not inside a git work tree, nothing was changed
    added: bool = False  # True: the remote was added; False: an existing one was updated


def helper_command(python: str, home: Path) -> str:
    """The credential helper as git runs it: a shell command (the leading ``!``)."""
    argv = [python, "-m", "fnmesh.platform.cli", "git-credential", "--home", str(home)]
    return "!" + " ".join(shlex.quote(part) for part in argv)


def helper_key(api: str) -> str:
    """The config key that gives the API URL (scheme, host and port) its own helpers."""
    parts = urlsplit(api)
    return f"credential.{parts.scheme}://{parts.netloc}.helper"


def _git(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        raise RemoteError("git is not installed (or not on PATH): install git first") from None


def work_tree(cwd: Path, env: Mapping[str, str] | None = None) -> Path | None:
    """The top folder of the git work tree around ``cwd``, or None."""
    try:
        done = _git(["rev-parse", "--show-toplevel"], cwd, env)
    except RemoteError:
        return None
    top = done.stdout.strip()
    return Path(top) if done.returncode == 0 and top else None


def set_up_remote(
    url: str,
    *,
    api: str,
    helper: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    remote: str = REMOTE,
) -> RemoteSetup:
    """Point ``remote`` at ``url`` and register ``helper`` for ``api``, inside a work tree."""
    top = work_tree(cwd, env)
    if top is None:
        return RemoteSetup(url, None)
    exists = _git(["remote", "get-url", remote], top, env).returncode == 0
    _check(_git(["remote", "set-url" if exists else "add", remote, url], top, env))
    key = helper_key(api)
    _git(["config", "--local", "--unset-all", key], top, env)  # absent is fine
    # an empty helper first drops helpers configured elsewhere (a global "store" would
    # otherwise be asked to save the token in plain text, or answer with a stale one)
    _check(_git(["config", "--local", "--add", key, ""], top, env))
    _check(_git(["config", "--local", "--add", key, helper], top, env))
    return RemoteSetup(url, top, added=not exists)


def _check(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise RemoteError(
            f"git {' '.join(done.args[1:3])} failed: {done.stderr.strip() or done.returncode}"
        )


def parse_credential_request(lines: Iterable[str]) -> dict[str, str]:
    """git's credential request: ``key=value`` lines up to a blank line."""
    found: dict[str, str] = {}
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            break
        key, equals, value = line.partition("=")
        if equals:
            found[key] = value
    return found


def answer_credential(request: Mapping[str, str], *, api: str, token: str) -> str:
    """The answer to ``get``: the token, when git asks about the platform's API URL."""
    parts = urlsplit(api)
    host = parts.netloc.rpartition("@")[2]
    if request.get("protocol") != parts.scheme or request.get("host") != host:
        return ""
    return f"username={USERNAME}\npassword={token}\n"
