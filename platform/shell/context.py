"""The CLI's context file and the token in it; the admin token a cluster's chart gives.

``<home>/context.json`` tells ``fn`` where the platform is (``api``, ``gateway``,
``domain``, ``pid``, and ``backend`` when it is not embedded) and carries an admin
token. It is written whole (a temporary file renamed into place) with mode 0600. A start
keeps the token already in it while the store still grants it admin rights over every
namespace, so a restart does not log the CLI out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fnmesh.platform.store import NotFound, Store
from fnmesh.platform.store.tokens import SYSTEM_NAMESPACE, Tokens


def read_token(path: Path) -> str | None:
    """The token of the context file at ``path``; None when there is none to read."""
    with contextlib.suppress(ValueError, OSError):
        token = json.loads(path.read_text()).get("token")
        if isinstance(token, str) and token:
            return token
    return None


def admin_token(tokens: Tokens, context_file: Path, name: str) -> str:
    """The context's token while it is still an admin token of every namespace; else a
    new one, minted as the token ``name`` (replacing that token's earlier secret)."""
    token = read_token(context_file)
    if token is not None:
        grant = tokens.verify(token)
        if grant is not None and grant.role == "admin" and grant.namespace is None:
            return token
    return tokens.mint(name)


def write_context(path: Path, body: Mapping[str, object]) -> None:
    """Replace the context file at ``path`` with ``body`` (mode 0600, never half written)."""
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(dict(body), out, indent=2)
    partial.replace(path)


def adopt_token(store: Store, name: str, secret: str, role: str = "admin") -> None:
    """Make ``secret`` a valid API token named ``name`` (only its SHA-256 is kept): the
    chart hands the API its admin token in a Secret."""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    body: dict[str, Any] = {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Token",
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE},
        "spec": {"sha256": digest, "role": role},
    }
    try:
        current = store.get("Token", SYSTEM_NAMESPACE, name)
    except NotFound:
        store.create(body)
        return
    if current.get("spec") != body["spec"]:
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        store.update(body)
