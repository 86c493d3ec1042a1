"""Which function a request is for (pure).

Two forms:
- path: ``/fn/<name>/<rest>`` for the default namespace, ``/fn/<name>.<ns>/<rest>`` for
  another (names are DNS labels without dots, so the dot cannot be misread; a form like
  ``/fn/<ns>/<name>`` would collide with ``/fn/<name>/<rest>``);
- host: ``<name>.<ns>.<domain>`` (any port).
The function sees ``<rest>`` (always starting with ``/``) and the query string.

A traffic tag picks one revision whatever its weight: ``/fn/<name>@<tag>/<rest>``, or the
host ``<tag>-<name>.<ns>.<domain>``. The host form is ambiguous on its own (``a-b`` may
be a function, or tag ``a`` of function ``b``): ``tag_splits`` lists the readings and the
gateway takes a tag only when no function has the whole name.
"""

from __future__ import annotations

from dataclasses import dataclass

from fnmesh.platform.model.names import DEFAULT_NAMESPACE

PREFIX = b"/fn/"


@dataclass(frozen=True, slots=True)
class Route:
    namespace: str
    function: str
    target: bytes  # what the function sees: b"/rest?query"
    prefix: bytes  # what the gateway removed, for x-forwarded-prefix
    tag: str | None = None


def resolve(host: bytes | None, target: bytes, domain: bytes) -> Route | None:
    by_host = _by_host(host, target, domain) if host else None
    return by_host or _by_path(target)


def _by_path(target: bytes) -> Route | None:
    if not target.startswith(PREFIX):
        return None
    rest = target[len(PREFIX) :]
    cut = len(rest)
    for mark in (b"/", b"?"):
        found = rest.find(mark)
        if found != -1:
            cut = min(cut, found)
    head, tail = rest[:cut], rest[cut:]
    if not head:
        return None
    name_part, _, tag = head.partition(b"@")
    name, _, namespace = name_part.partition(b".")
    if not name or b"." in namespace:
        return None
    if not tail.startswith(b"/"):
        tail = b"/" + tail
    return Route(
        namespace=(namespace or DEFAULT_NAMESPACE.encode()).decode("ascii", "replace"),
        function=name.decode("ascii", "replace"),
        target=tail,
        prefix=PREFIX + head,
        tag=tag.decode("ascii", "replace") if tag else None,
    )


def _by_host(host: bytes, target: bytes, domain: bytes) -> Route | None:
    hostname = host.rsplit(b":", 1)[0] if not host.endswith(b"]") else host
    hostname = hostname.lower().rstrip(b".")
    suffix = b"." + domain
    if not hostname.endswith(suffix):
        return None
    labels = hostname[: -len(suffix)].split(b".")
    if len(labels) != 2 or not all(labels):
        return None
    name, namespace = labels
    return Route(
        namespace=namespace.decode("ascii", "replace"),
        function=name.decode("ascii", "replace"),
        target=target or b"/",
        prefix=b"",
    )


def tag_splits(label: str) -> list[tuple[str, str]]:
    """(tag, function) readings of a host label ``<tag>-<function>``, shortest tag first."""
    return [
        (label[:i], label[i + 1 :])
        for i, char in enumerate(label)
        if char == "-" and 0 < i < len(label) - 1
    ]
