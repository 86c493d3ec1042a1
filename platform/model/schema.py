"""A declarative schema for resource specs: one source for validation and for CRDs.

``check`` walks untrusted data against a schema, collecting every problem with its field
path, and returns the data normalized (durations in seconds, defaults left out).
``openapi`` renders the same schema as an OpenAPI v3 schema for Kubernetes CRDs, so the
cluster and the embedded platform accept the same objects.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fnmesh.platform.model.durations import parse_duration
from fnmesh.platform.model.errors import Problems
from fnmesh.platform.model.quantities import (
    CPU_EXAMPLE,
    MEMORY_EXAMPLE,
    cores,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
)

Kind = Literal[
    "string",
    "integer",
    "number",
    "duration",
    "boolean",
    "map",
    "object",
    "enum",
    "list",
    "memory",
    "cpu",
]
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Field:
    kind: Kind
    help: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    fields: Mapping[str, Field] = field(default_factory=dict)
    check: Check | None = None
    max_length: int | None = None
    items: Field | None = None  # what a "list" holds


_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "duration": "a duration such as 30, '500ms', '30s' or '2m'",
    "boolean": "true or false",
    "map": "a mapping of names to strings",
    "object": "a mapping",
    "list": "a list",
    "memory": f"a memory size such as {MEMORY_EXAMPLE}",
    "cpu": f"a cpu amount such as {CPU_EXAMPLE}",
}


def check(data: Any, fields: Mapping[str, Field], path: str, problems: Problems) -> dict[str, Any]:
    """Validate a mapping against ``fields``; return it normalized."""
    if not isinstance(data, Mapping):
        problems.add(path, f"must be a mapping of fields, not {_type_name(data)}")
        return {}
    out: dict[str, Any] = {}
    for key in data:
        if key not in fields:
            problems.add(_join(path, str(key)), _unknown(str(key), fields))
    for name, spec in fields.items():
        where = _join(path, name)
        if name not in data or data[name] is None:
            if spec.required:
                problems.add(where, f"is required: {spec.help}")
            continue
        value = _value(data[name], spec, where, problems)
        if value is not None:
            out[name] = value
    return out


def _value(value: Any, spec: Field, where: str, problems: Problems) -> Any:
    before = len(problems.errors)
    result: Any = None
    if spec.kind == "object":
        result = check(value, spec.fields, where, problems)
    elif spec.kind == "list":
        result = _list(value, spec, where, problems)
    elif spec.kind == "map":
        result = _map(value, where, problems)
    elif spec.kind == "duration":
        result = parse_duration(value)
        if result is None:
            problems.add(where, f"must be {_TYPE_WORDS['duration']}, not {value!r}")
    elif spec.kind in ("memory", "cpu"):
        result = _quantity(value, spec, where, problems)
    elif spec.kind == "enum":
        if value not in spec.choices:
            problems.add(where, f"must be one of {', '.join(spec.choices)}, not {value!r}")
        else:
            result = value
    elif spec.kind == "boolean":
        if isinstance(value, bool):
            result = value
        else:
            problems.add(where, f"must be true or false, not {value!r}")
    elif spec.kind in ("integer", "number"):
        result = _number(value, spec, where, problems)
    elif isinstance(value, str):
        if spec.max_length is not None and len(value) > spec.max_length:
            problems.add(where, f"is {len(value)} characters long; use at most {spec.max_length}")
        result = value
    else:
        problems.add(where, f"must be a string, not {_type_name(value)}")
    if result is not None and spec.kind in ("duration",):
        _bounds(result, spec, where, problems)
    if result is not None and spec.check is not None and len(problems.errors) == before:
        message = spec.check(result)
        if message:
            problems.add(where, message)
    if spec.kind in ("object", "list"):
        return result  # the valid part, so cross-field checks still see it
    return result if len(problems.errors) == before else None


def _list(value: Any, spec: Field, where: str, problems: Problems) -> list[Any] | None:
    if not isinstance(value, list | tuple):
        problems.add(where, f"must be {_TYPE_WORDS['list']}, not {_type_name(value)}")
        return None
    if spec.items is None:
        return list(value)
    out = []
    for index, item in enumerate(value):
        checked = _value(item, spec.items, f"{where}[{index}]", problems)
        if checked is not None:
            out.append(checked)
    return out


def _number(value: Any, spec: Field, where: str, problems: Problems) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(where, f"must be {_TYPE_WORDS[spec.kind]}, not {value!r}")
        return None
    if spec.kind == "integer" and not float(value).is_integer():
        problems.add(where, f"must be a whole number, not {value!r}")
        return None
    number: float | int = int(value) if spec.kind == "integer" else float(value)
    _bounds(number, spec, where, problems)
    return number


def _quantity(value: Any, spec: Field, where: str, problems: Problems) -> int | float | None:
    """Memory as bytes, cpu as cores (from millicores), checked against the bounds."""
    try:
        amount = parse_memory(value) if spec.kind == "memory" else parse_cpu(value)
    except ValueError as error:
        problems.add(where, str(error))
        return None
    spell = format_memory if spec.kind == "memory" else format_cpu
    # memory bounds are bytes; cpu bounds are cores, like the value stored
    scale = 1 if spec.kind == "memory" else 1000
    if spec.minimum is not None and amount < spec.minimum * scale:
        low = spell(round(spec.minimum * scale))
        problems.add(where, f"is {spell(amount)}, below the least a replica can run with, {low}")
        return None
    if spec.maximum is not None and amount > spec.maximum * scale:
        high = spell(round(spec.maximum * scale))
        problems.add(where, f"is {spell(amount)}, above {high}: ask for at most {high}")
        return None
    return amount if spec.kind == "memory" else cores(amount)


def _bounds(number: float, spec: Field, where: str, problems: Problems) -> None:
    if spec.minimum is not None and number < spec.minimum:
        problems.add(where, f"must be at least {spec.minimum:g}, not {number:g}")
    if spec.maximum is not None and number > spec.maximum:
        problems.add(where, f"must be at most {spec.maximum:g}, not {number:g}")


def _map(value: Any, where: str, problems: Problems) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        problems.add(where, f"must be {_TYPE_WORDS['map']}, not {_type_name(value)}")
        return None
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            problems.add(
                f"{where}.{key}",
                f'must be a string, not {item!r}; quote the value in YAML (e.g. "true")',
            )
            continue
        out[str(key)] = str(item)
    return out


def _unknown(key: str, fields: Mapping[str, Field]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(fields)}"
    return f"unknown field; {hint}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


_NUMERIC = ("integer", "number", "duration", "memory", "cpu")


def openapi(fields: Mapping[str, Field]) -> dict[str, Any]:
    """The OpenAPI v3 (structural) schema of an object with ``fields``."""
    return {
        "type": "object",
        "properties": {name: _openapi_field(spec) for name, spec in fields.items()},
        **(
            {"required": [n for n, s in fields.items() if s.required]}
            if any(s.required for s in fields.values())
            else {}
        ),
    }


def _openapi_field(spec: Field) -> dict[str, Any]:
    out: dict[str, Any]
    if spec.kind == "object":
        out = openapi(spec.fields)
    elif spec.kind == "map":
        out = {"type": "object", "additionalProperties": {"type": "string"}}
    elif spec.kind == "list":
        items = _openapi_field(spec.items) if spec.items is not None else {"type": "string"}
        out = {"type": "array", "items": items}
    elif spec.kind == "enum":
        out = {"type": "string", "enum": list(spec.choices)}
    elif spec.kind == "duration" or spec.kind == "cpu":
        out = {"type": "number"}
    elif spec.kind == "memory":
        out = {"type": "integer", "format": "int64"}
    else:
        out = {"type": spec.kind}
    if spec.minimum is not None and spec.kind in _NUMERIC:
        out["minimum"] = spec.minimum
    if spec.maximum is not None and spec.kind in _NUMERIC:
        out["maximum"] = spec.maximum
    if spec.max_length is not None:
        out["maxLength"] = spec.max_length
    out["description"] = spec.help
    return out
