"""Where secret values live, behind a narrow protocol of their own.

Secrets are not resources with a change feed: their values must never reach a watcher,
a list or a log. A ``SecretStore`` says what secrets exist (``SecretInfo``: names, keys,
times) and hands values only to ``read``, which the platform calls when it starts a
replica (embedded) -- never the API. Backends: ``SqliteSecrets`` (sealed with a key kept
beside the store) and ``KubernetesSecrets`` (core ``Secret`` objects).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from fnmesh.platform.model.errors import FieldError
from fnmesh.platform.model.secrets import SecretInfo
from fnmesh.platform.model.secrets import missing_references as decide_missing
from fnmesh.platform.store.errors import NotFound


class SecretStore(Protocol):
    def put(
        self, namespace: str, name: str, data: Mapping[str, bytes], *, replace: bool
    ) -> SecretInfo:
        """Create the secret, or replace all its keys when ``replace`` (else Conflict)."""
        ...

    def info(self, namespace: str, name: str) -> SecretInfo:
        """What is known of one secret (NotFound when there is none); never values."""
        ...

    def list(self, namespace: str | None = None) -> list[SecretInfo]: ...

    def read(self, namespace: str, name: str) -> dict[str, bytes]:
        """The values: for starting replicas only, never for an answer to a client."""
        ...

    def delete(self, namespace: str, name: str) -> SecretInfo: ...


def missing_references(
    store: SecretStore | None,
    namespace: str,
    secrets: list[str],
    secret_env: Mapping[str, str],
    prefix: str = "",
) -> list[FieldError]:
    """What a function spec names that ``store`` lacks (model.secrets decides; this reads)."""
    if not secrets and not secret_env:
        return []
    if store is None:
        return [FieldError(f"{prefix}secrets", "this platform keeps no secrets: remove it")]
    found: dict[str, SecretInfo | None] = {}
    for name in secrets:
        try:
            found[name] = store.info(namespace, name)
        except NotFound:
            found[name] = None
    return decide_missing(namespace, secrets, secret_env, found, prefix)
