"""Where resources live: the embedded SQLite store (and, on Kubernetes, custom resources).

Every backend keeps Kubernetes-shaped objects as dicts, stamps ``uid``,
``resourceVersion``, ``generation`` and ``creationTimestamp``, refuses stale updates, and
offers a change feed (``watch``) that controllers and the gateway follow.
"""

from fnmesh.platform.store.errors import (
    Conflict,
    Expired,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from fnmesh.platform.store.events import Event
from fnmesh.platform.store.protocol import Store
from fnmesh.platform.store.secrets import SecretStore
from fnmesh.platform.store.sqlite import SqliteStore
from fnmesh.platform.store.sqlite_reads import SqliteReads
from fnmesh.platform.store.sqlite_secrets import SqliteSecrets

__all__ = [
    "Conflict",
    "Event",
    "Expired",
    "NotFound",
    "SecretStore",
    "SqliteReads",
    "SqliteSecrets",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
]
