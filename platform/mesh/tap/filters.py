"""Which requests a tap session wants (pure): by method and by path prefix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fnmesh.platform.model.errors import FieldError, ValidationError

_FIELDS = {"method", "pathPrefix"}


@dataclass(frozen=True, slots=True)
class TapFilter:
    method: str | None = None  # upper-case, e.g. "GET"; None: any
    path_prefix: str | None = None  # e.g. "/orders"; None: any

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, str]:
        body: dict[str, str] = {}
        if self.method is not None:
            body["method"] = self.method
        if self.path_prefix is not None:
            body["pathPrefix"] = self.path_prefix
        return body


ANYTHING = TapFilter()


def parse_filter(body: object) -> TapFilter:
    """``{"method": "GET", "pathPrefix": "/x"}`` (both optional) -> TapFilter."""
    if body is None:
        return ANYTHING
    if not isinstance(body, dict):
        raise ValidationError(
            [FieldError("", 'must be an object like {"method": "GET", "pathPrefix": "/"}')],
            "tap filters",
        )
    errors: list[FieldError] = []
    method = _text(body, "method", errors)
    prefix = _text(body, "pathPrefix", errors)
    if prefix is not None and not prefix.startswith("/"):
        errors.append(FieldError("pathPrefix", f"must start with '/', not {prefix!r}"))
    errors += [
        FieldError(key, "unknown filter: use 'method' and 'pathPrefix'")
        for key in sorted(set(body) - _FIELDS)
    ]
    if errors:
        raise ValidationError(errors, "tap filters")
    return TapFilter(method.upper() if method else None, prefix or None)


def _text(body: dict[str, Any], name: str, errors: list[FieldError]) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    errors.append(FieldError(name, f"must be a string, not {value!r}"))
    return None
