"""Who may do what: the roles of API tokens and the decision they lead to (pure).

A token has one role and, optionally, one namespace it is limited to. Every API route
names the ``(resource, verb)`` it needs; ``decide`` says whether a token may, and if not,
why. The role table is the one place that says what each role can do:

- ``admin``: everything, and the only role that manages tokens (unscoped admins only).
- ``deployer``: writes functions, source (deploys, git pushes), traffic and rollouts,
  traffic targets and secrets in its namespaces; reads all of it; invokes.
- ``viewer``: reads resources, build logs, logs, stats and tap (tap events cut down
  to what carries no payload or credentials, see ``redact_tap``); never writes.
- ``invoker``: calls private functions through the gateway; nothing on the API.

``secrets`` is a resource of its own: deployers and admins may write them; reading a
secret means its name and metadata, never its value, which no role is served.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["admin", "deployer", "viewer", "invoker"]
Verb = Literal["read", "write"]
ROLES: tuple[Role, ...] = ("admin", "deployer", "viewer", "invoker")
ASCENDING: tuple[Role, ...] = ("invoker", "viewer", "deployer", "admin")

# resources a route can name; ``invoke`` is the gateway's, ``metrics`` the platform's own
RESOURCES = (
    "functions",
    "revisions",
    "traffic",  # traffic splits and targets, spec.traffic, rollback and promote
    "source",  # deploy (write) and git fetch (read)
    "builds",  # build logs
    "logs",
    "stats",
    "tap",
    "secrets",  # names and metadata only (read); values are write-only
    "tokens",
    "invoke",
    "metrics",
)


def _pairs(resources: tuple[str, ...], verbs: tuple[Verb, ...]) -> set[tuple[str, Verb]]:
    return {(resource, verb) for resource in resources for verb in verbs}


_READ_ALL = _pairs(
    tuple(r for r in RESOURCES if r not in ("tokens", "invoke", "source", "secrets")), ("read",)
)
_DEPLOY: set[tuple[str, Verb]] = {
    ("functions", "write"),
    ("traffic", "write"),
    ("source", "read"),
    ("source", "write"),
    ("secrets", "read"),
    ("secrets", "write"),
    ("invoke", "write"),
}
PERMISSIONS: dict[Role, frozenset[tuple[str, Verb]]] = {
    "admin": frozenset(_pairs(RESOURCES, ("read", "write"))),
    "deployer": frozenset(_READ_ALL | _DEPLOY),
    "viewer": frozenset(_READ_ALL),
    "invoker": frozenset({("invoke", "write")}),
}
# resources that span namespaces: only a token limited to none may use them
CLUSTER_WIDE = frozenset({"tokens", "metrics"})


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token stands for (the secret itself is never kept)."""

    id: str
    role: Role
    namespace: str | None = None  # None: every namespace
    name: str = ""
    created: str = ""
    expires_at: float | None = None  # epoch seconds
    revoked: str | None = None  # when it was revoked (RFC 3339), None while valid


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a token may not: rendered as 403 with the role needed and the token's."""

    message: str
    required: Role
    role: Role

    def details(self) -> dict[str, str]:
        return {"requiredRole": self.required, "tokenRole": self.role}


def required_role(resource: str, verb: Verb) -> Role:
    """The least role that may do ``verb`` on ``resource``."""
    for role in ASCENDING:
        if (resource, verb) in PERMISSIONS[role]:
            return role
    return "admin"


def decide(grant: Grant, resource: str, verb: Verb, namespace: str | None) -> Denial | None:
    """None when ``grant`` may do ``verb`` on ``resource`` in ``namespace`` (None: all)."""
    if (resource, verb) not in PERMISSIONS[grant.role]:
        needed = required_role(resource, verb)
        return Denial(
            f"a token with role {grant.role!r} may not {verb} {resource}: "
            f"this needs role {needed!r} (`fn token create --role {needed}`)",
            needed,
            grant.role,
        )
    if grant.namespace is None:
        return None
    if resource in CLUSTER_WIDE or namespace is None:
        return Denial(
            f"{resource} span every namespace, and this token is limited to namespace "
            f"{grant.namespace!r}: use a token without --namespace",
            grant.role,
            grant.role,
        )
    if namespace != grant.namespace:
        return Denial(
            f"this token is limited to namespace {grant.namespace!r}, not {namespace!r}",
            grant.role,
            grant.role,
        )
    return None


def validity(grant: Grant, now: float) -> str | None:
    """Why a known token is refused (401) at ``now``, or None while it is valid."""
    if grant.revoked is not None:
        return f"the token {grant.id!r} was revoked at {grant.revoked}"
    if grant.expires_at is not None and now >= grant.expires_at:
        return f"the token {grant.id!r} expired: create a new one with `fn token create`"
    return None


_LIFETIME = re.compile(r"^\s*(?P<n>[0-9]+)\s*(?P<unit>m|h|d|w)\s*$")
_LIFETIME_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_LIFETIME = 10 * 365 * 86400


def parse_lifetime(value: object) -> float | None:
    """Seconds of ``30d``, ``12h``, ``90m``, ``2w``; None when it is not one of those."""
    if not isinstance(value, str):
        return None
    match = _LIFETIME.match(value)
    if not match:
        return None
    seconds = int(match.group("n")) * _LIFETIME_UNITS[match.group("unit")]
    return float(seconds) if 0 < seconds <= MAX_LIFETIME else None


# What a viewer sees of a tap event: timing, route and sizes, never bodies, headers or
# query strings (they can carry credentials). Deployers and admins see events whole.
TAP_FIELDS = frozenset(
    {
        "type",
        "time",
        "id",
        "method",
        "authority",
        "path",
        "tls",
        "source",
        "destination",
        "revision",
        "status",
        "latencyMs",
        "bytes",
    }
)


def redact_tap(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` cut down to ``TAP_FIELDS``; a path loses its query string."""
    kept = {key: value for key, value in event.items() if key in TAP_FIELDS}
    if isinstance(kept.get("path"), str):
        kept["path"] = kept["path"].split("?", 1)[0]
    return kept


def sees_tap_whole(grant: Grant) -> bool:
    return grant.role in ("admin", "deployer")
