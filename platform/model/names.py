"""Names of things: DNS-1123 labels for functions and namespaces, revision names."""

from __future__ import annotations

import re

DEFAULT_NAMESPACE = "default"
# A revision name is "<function>-00001"; Kubernetes labels and Service names stop at 63.
MAX_FUNCTION_NAME = 50
MAX_NAMESPACE_NAME = 63
# A tag reaches its revision at "<tag>-<function>.<namespace>.<domain>"; labels stop at 63.
MAX_TAG = 40
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_REVISION = re.compile(r"^(?P<fn>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<n>[0-9]{5,})$")


def check_name(value: object, *, what: str = "name", limit: int = MAX_FUNCTION_NAME) -> str | None:
    """Return why ``value`` is not a valid DNS-1123 label, or None when it is."""
    if not isinstance(value, str) or not value:
        return f"{what} is required: use lower-case letters, digits and '-'"
    if len(value) > limit:
        return f"{what} {value!r} is {len(value)} characters long; use at most {limit}"
    if not _LABEL.match(value):
        return (
            f"{what} {value!r} is not a DNS-1123 label: use lower-case letters, digits and '-',"
            " starting and ending with a letter or digit (e.g. 'my-func')"
        )
    return None


def revision_name(function: str, number: int) -> str:
    return f"{function}-{number:05d}"


def revision_number(name: str) -> int | None:
    match = _REVISION.match(name)
    return int(match.group("n")) if match else None
