"""Which platform the CLI talks to: the home folder and its ``context.json``.

The home is ``--home DIR``, else ``$FNMESH_HOME``, else ``~/.fnmesh``. ``fn up`` writes
``<home>/context.json`` with the API and gateway URLs and the API token (an admin's);
``$FNMESH_TOKEN`` replaces that token for one command or shell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from fnmesh.platform.cli.errors import CliError

CONTEXT_FILE = "context.json"
HOME_ENV = "FNMESH_HOME"
TOKEN_ENV = "FNMESH_TOKEN"  # a token to use instead of the context's (e.g. a deployer's)
DEFAULT_HOME = "~/.fnmesh"


@dataclass(frozen=True, slots=True)
class Context:
    home: Path
    api: str
    gateway: str
    token: str
    domain: str = "fn.localhost"

    @property
    def path(self) -> Path:
        return self.home / CONTEXT_FILE


def find_home(flag: str | None, env: Mapping[str, str]) -> Path:
    """The platform home: the flag, else the environment, else the default."""
    chosen = flag or env.get(HOME_ENV) or DEFAULT_HOME
    return Path(chosen).expanduser()


def load_context(home: Path) -> Context:
    """Read ``<home>/context.json``; raise CliError naming what to do when it is unusable."""
    path = home / CONTEXT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CliError(f"no platform found at {home}: start one with `fn up`") from None
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CliError(
            f"{path} is not valid JSON ({error}): restart `fn up` to rewrite it"
        ) from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object: restart `fn up` to rewrite it")
    missing = [key for key in ("api", "gateway", "token") if not isinstance(data.get(key), str)]
    if missing:
        raise CliError(f"{path} lacks {', '.join(missing)}: restart `fn up` to rewrite it")
    return Context(
        home=home,
        api=data["api"].rstrip("/"),
        gateway=data["gateway"].rstrip("/"),
        token=data["token"],
        domain=str(data.get("domain") or "fn.localhost"),
    )


def with_token(context: Context, env: Mapping[str, str]) -> Context:
    """``context`` with ``$FNMESH_TOKEN`` as its token when that is set."""
    token = env.get(TOKEN_ENV, "").strip()
    return replace(context, token=token) if token else context
