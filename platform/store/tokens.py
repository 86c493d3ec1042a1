"""API tokens as the store keeps them: ``Token`` objects holding a SHA-256, never a secret.

A Token lives in the namespace ``fnmesh-system``; its name is the token's id. Its spec::

    sha256: <hex digest of the secret>       role: admin|deployer|viewer|invoker
    namespace: <the one it is limited to>     (absent: every namespace)
    expiresAt: <RFC 3339>                     (absent: never)
    revokedAt: <RFC 3339>                     (absent: valid)
    description: <a name people gave it>

Checking a secret costs a hash and a dictionary look-up: the table keeps a snapshot of
every token, read again when it is older than ``ttl`` seconds (5), or on an unknown
digest when older than ``miss_refresh`` (1 s). A revocation or a new token therefore
takes effect in another process within ``ttl`` seconds, and at once in this one.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from fnmesh.platform.model.access import ROLES, Grant, Role, validity
from fnmesh.platform.store.errors import NotFound
from fnmesh.platform.store.protocol import Store

SYSTEM_NAMESPACE = "fnmesh-system"
CACHE_SECONDS = 5.0
MISS_REFRESH_SECONDS = 1.0
SECRET_PREFIX = "fnm_"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime(_STAMP)


def parse_stamp(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.strptime(text, _STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return moment.timestamp()


def grant_of(item: dict[str, Any]) -> Grant | None:
    """The grant a Token object stands for; None for one that is not well formed."""
    spec = item.get("spec") or {}
    meta = item.get("metadata") or {}
    role = spec.get("role", "admin")  # tokens from before roles were read are admins
    if role not in ROLES or not isinstance(spec.get("sha256"), str):
        return None
    namespace = spec.get("namespace")
    expires = spec.get("expiresAt")
    expires_at = parse_stamp(expires)
    if expires is not None and expires_at is None:
        expires_at = 0.0  # an expiry that cannot be read has passed
    return Grant(
        id=str(meta.get("name", "")),
        role=cast(Role, role),
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        name=str(spec.get("description") or ""),
        created=str(meta.get("creationTimestamp") or ""),
        expires_at=expires_at,
        revoked=str(spec["revokedAt"]) if spec.get("revokedAt") else None,
    )


class Tokens:
    """Mint, check, list and revoke the API's tokens (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        ttl: float = CACHE_SECONDS,
        miss_refresh: float = MISS_REFRESH_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        self.ttl = ttl
        self.miss_refresh = miss_refresh
        self._by_digest: dict[str, Grant] = {}
        self._loaded = float("-inf")
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- writing ----------------------------------------------------------------------

    def mint(self, name: str, role: Role = "admin") -> str:
        """A new secret for the token ``name`` (replacing an older one's), for every
        namespace, never expiring; only its hash is kept."""
        secret = _new_secret()
        body = _token_body(name, {"sha256": digest(secret), "role": role})
        try:
            current = self.store.get("Token", SYSTEM_NAMESPACE, name)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.store.update(body)
        except NotFound:
            self.store.create(body)
        self.forget()
        return secret

    def create(
        self,
        role: Role,
        *,
        namespace: str | None = None,
        lifetime: float | None = None,
        description: str = "",
    ) -> tuple[str, Grant]:
        """A new token with a fresh id; the secret is returned here and nowhere else."""
        secret = _new_secret()
        spec: dict[str, Any] = {"sha256": digest(secret), "role": role}
        if namespace:
            spec["namespace"] = namespace
        if lifetime is not None:
            spec["expiresAt"] = stamp(self.clock() + lifetime)
        if description:
            spec["description"] = description
        created = self.store.create(_token_body(f"tok-{secrets.token_hex(5)}", spec))
        self.forget()
        grant = grant_of(created)
        assert grant is not None
        return secret, grant

    def revoke(self, token_id: str) -> Grant:
        """Mark the token revoked (kept, so it is listed and refused by name); NotFound
        when there is none."""
        current = self.store.get("Token", SYSTEM_NAMESPACE, token_id)
        if not (current.get("spec") or {}).get("revokedAt"):
            current["spec"]["revokedAt"] = stamp(self.clock())
            current = self.store.update(current)
        self.forget()
        grant = grant_of(current)
        if grant is None:
            raise NotFound(f"Token {token_id} is not a token this platform can read")
        return grant

    def forget(self) -> None:
        """Drop the snapshot: the next check reads the store."""
        self._loaded = float("-inf")

    # -- reading ----------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        try:
            self.store.get("Token", SYSTEM_NAMESPACE, name)
        except NotFound:
            return False
        return True

    def grants(self) -> list[Grant]:
        """Every token the store holds, read now."""
        items = self.store.list("Token", SYSTEM_NAMESPACE)[0]
        return [g for g in (grant_of(item) for item in items) if g is not None]

    def last_used(self, token_id: str) -> float | None:
        """When this process last accepted the token (epoch seconds), if it has."""
        return self._used.get(token_id)

    def authenticate(self, secret: str) -> Grant | str:
        """The token's grant when ``secret`` is valid now, else why it is refused."""
        key = digest(secret)
        grant = self._lookup(key)
        if grant is None:
            return "the bearer token is not known to this platform"
        now = self.clock()
        problem = validity(grant, now)
        if problem is not None:
            return problem
        self._used[grant.id] = now
        return grant

    def verify(self, secret: str) -> Grant | None:
        """The grant of a valid token, else None."""
        found = self.authenticate(secret)
        return found if isinstance(found, Grant) else None

    def _lookup(self, key: str) -> Grant | None:
        age = self.monotonic() - self._loaded
        if age >= self.ttl:
            self._reload()
            return self._by_digest.get(key)
        grant = self._by_digest.get(key)
        if grant is None and age >= self.miss_refresh:
            self._reload()
            grant = self._by_digest.get(key)
        return grant

    def _reload(self) -> None:
        with self._lock:
            table: dict[str, Grant] = {}
            for item in self.store.list("Token", SYSTEM_NAMESPACE)[0]:
                grant = grant_of(item)
                if grant is not None:
                    table[str(item["spec"]["sha256"])] = grant
            self._by_digest = table
            self._loaded = self.monotonic()


def _new_secret() -> str:
    return f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"


def _token_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Token",
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE},
        "spec": spec,
    }
