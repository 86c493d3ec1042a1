"""Dataclasses <-> the JSON shapes of Kubernetes objects (camelCase keys).

``to_wire`` drops fields that are None or empty so objects stay small and read like
hand-written YAML; ``from_wire`` trusts its input: validation happens before, in
``validation.py`` and ``manifest.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_wire(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is None or (isinstance(item, list | dict | tuple) and not item):
                continue
            out[camel(field.name)] = to_wire(item)
        return out
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    return value


def from_wire(cls: type[T], data: Any) -> T:
    return typing.cast(T, _convert(cls, data))


def _convert(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        if data is None:
            return None
        inner = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _convert(inner[0], data)
    if origin is typing.Literal:
        return data
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp)
        items = [_convert(inner, item) for item in data or ()]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        _, inner = typing.get_args(tp)
        return {key: _convert(inner, item) for key, item in (data or {}).items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {}
        source = data or {}
        for field in dataclasses.fields(tp):
            key = camel(field.name)
            if key in source:
                kwargs[field.name] = _convert(hints[field.name], source[key])
        return tp(**kwargs)
    if tp is float and isinstance(data, int):
        return float(data)
    return data
