"""What the API server does with a custom resource before it keeps it: prune, validate.

The CRDs are the chart's own (``charts/fnmesh/crds``). For one write the server:

1. prunes every field its structural schema does not declare (unless the node says
   ``x-kubernetes-preserve-unknown-fields``); metadata is kept as sent;
2. validates the result against the version's ``openAPIV3Schema``; the first error is a
   422 naming the field (``spec.scale.min: Invalid value: ...``);
3. on an update, checks the transition rules in ``x-kubernetes-validations``. Only the
   rule the chart uses, ``self == oldSelf``, is understood; any other fails loudly here
   rather than passing unchecked.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR = Path(__file__).resolve().parents[2] / "charts" / "fnmesh" / "crds"
IMMUTABLE_RULE = "self == oldSelf"
Obj = dict[str, Any]


def load_crds(folder: Path = CRD_DIR) -> dict[tuple[str, str], Obj]:
    """(group, kind) -> CRD, for every CRD the chart ships."""
    found: dict[tuple[str, str], Obj] = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = doc
    return found


def crd_schema(crd: Obj, version: str) -> Obj:
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            return dict(served["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{crd['metadata']['name']} has no version {version}")


@dataclasses.dataclass(frozen=True)
class Invalid(Exception):
    """A refusal: the field's path (``spec.scale.min``), the value and why."""

    field: str
    value: Any
    reason: str

    def __str__(self) -> str:
        if isinstance(self.value, dict | list):
            shown = '"object"' if isinstance(self.value, dict) else '"array"'
        else:
            shown = json.dumps(self.value)
        return f"{self.field}: Invalid value: {shown}: {self.reason}"


def prune(node: Any, schema: Obj, *, root: bool = False) -> Any:
    """``node`` without the fields ``schema`` does not declare (a copy)."""
    if isinstance(node, dict) and schema.get("type") == "object":
        properties: dict[str, Obj] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
        out = {}
        for key, value in node.items():
            if root and key in ("apiVersion", "kind", "metadata"):
                out[key] = copy.deepcopy(value)
            elif key in properties:
                out[key] = prune(value, properties[key])
            elif isinstance(extra, dict):
                out[key] = prune(value, extra)
            elif keep_unknown:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in node]
    return copy.deepcopy(node)


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate(obj: Obj, schema: Obj) -> None:
    """Raise ``Invalid`` for the first field ``obj`` breaks (metadata is not checked)."""
    body = {key: value for key, value in obj.items() if key != "metadata"}
    checked = copy.deepcopy(schema)
    checked.get("properties", {}).pop("metadata", None)
    error = jsonschema.exceptions.best_match(jsonschema.Draft4Validator(checked).iter_errors(body))
    if error is not None:
        field = _path(error.absolute_path) or "<root>"
        raise Invalid(field, error.instance, error.message)


def _rules(schema: Obj, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Obj]]:
    for rule in schema.get("x-kubernetes-validations") or ():
        yield path, rule
    for name, child in (schema.get("properties") or {}).items():
        yield from _rules(child, (*path, name))


def _at(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def check_transition(new: Obj, old: Obj | None, schema: Obj) -> None:
    """Raise ``Invalid`` when an update breaks a transition rule of the schema."""
    for path, rule in _rules(schema):
        if rule["rule"] != IMMUTABLE_RULE:
            raise NotImplementedError(f"the test cluster cannot evaluate {rule['rule']!r}")
        if old is None:
            continue  # transition rules hold on updates only
        had, before = _at(old, path)
        has, after = _at(new, path)
        if had and has and before != after:
            raise Invalid(".".join(path), after, rule.get("message") or f"failed rule: {rule}")


@dataclasses.dataclass(frozen=True)
class Admission:
    """The chart's CRDs, applied to writes of custom resources."""

    crds: dict[tuple[str, str], Obj]

    @classmethod
    def from_chart(cls) -> Admission:
        return cls(load_crds())

    def schema_for(self, group: str, version: str, plural: str) -> tuple[str, Obj] | None:
        """(kind, schema) of a custom resource; None for a kind no CRD defines."""
        for (crd_group, kind), crd in self.crds.items():
            if crd_group == group and crd["spec"]["names"]["plural"] == plural:
                return kind, crd_schema(crd, version)
        return None

    def admit(self, schema: Obj, new: Obj, old: Obj | None) -> Obj:
        """The object the server keeps: pruned, validated; ``Invalid`` when refused."""
        kept = prune(new, schema, root=True)
        validate(kept, schema)
        check_transition(kept, old, schema)
        return dict(kept)
