"""The authorization policy of one replica and the decision it makes (pure).

The platform writes ``{"public": true|false, "allow": ["<identity>", ...]}``. A public
function accepts the platform's public callers (the gateway and the activator) and the
identities in ``allow``; a private one only those in ``allow``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fnmesh.platform.model.errors import FieldError, ValidationError

ALLOWED = (True, "")


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may call: ``callers`` is every accepted identity, public callers included."""

    public: bool
    allow: frozenset[str]
    callers: frozenset[str]
    source: str = ""  # where the policy came from, for reasons ("policy file /x")


DENY_ALL = Policy(public=False, allow=frozenset(), callers=frozenset(), source="no policy")


def make_policy(
    public: bool, allow: frozenset[str], public_callers: frozenset[str], source: str = ""
) -> Policy:
    callers = allow | public_callers if public else allow
    return Policy(public=public, allow=allow, callers=callers, source=source)


def parse_policy(document: object, public_callers: frozenset[str], source: str = "") -> Policy:
    """Validate a policy document; ValidationError lists every problem with its field."""
    if not isinstance(document, dict):
        raise ValidationError(
            [FieldError("", 'must be a JSON object such as {"public": true, "allow": []}')],
            source or "policy",
        )
    errors: list[FieldError] = []
    public = document.get("public", False)
    if not isinstance(public, bool):
        errors.append(FieldError("public", f"must be true or false, not {public!r}"))
    allow = document.get("allow", [])
    names: list[str] = []
    if not isinstance(allow, list):
        errors.append(FieldError("allow", "must be a list of identity names"))
    else:
        for index, item in enumerate(allow):
            if isinstance(item, str) and item:
                names.append(item)
            else:
                errors.append(
                    FieldError(f"allow[{index}]", f"must be an identity name, not {item!r}")
                )
    unknown = sorted(set(document) - {"public", "allow"})
    errors += [FieldError(key, "unknown field: use 'public' and 'allow'") for key in unknown]
    if errors:
        raise ValidationError(errors, source or "policy")
    return make_policy(public is True, frozenset(names), public_callers, source)


def allowed(policy: Policy, identity: str | None) -> tuple[bool, str]:
    """May ``identity`` call? ``(True, "")``, or ``(False, why)``."""
    if identity is not None and identity in policy.callers:
        return ALLOWED
    if identity is None:
        return False, "the client presented no identity"
    kind = "public" if policy.public else "private"
    where = f" ({policy.source})" if policy.source else ""
    return False, f"identity {identity} is not allowed to call this {kind} function{where}"
