"""``fn.yaml``: a function folder's manifest, and Function resources sent to the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from fnmesh.platform.model.errors import FieldError, Problems, ValidationError
from fnmesh.platform.model.names import (
    DEFAULT_NAMESPACE,
    MAX_NAMESPACE_NAME,
    check_name,
    revision_number,
)
from fnmesh.platform.model.resources import API_VERSION, Function, FunctionSpec, ObjectMeta
from fnmesh.platform.model.schema import check
from fnmesh.platform.model.secrets import check_secret_env
from fnmesh.platform.model.spec_schema import SPEC_FIELDS
from fnmesh.platform.model.wire import from_wire

MANIFEST_FILE = "fn.yaml"
_IDENTITY = ("name", "namespace")


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    namespace: str
    spec: FunctionSpec

    def function(self) -> Function:
        return Function(
            metadata=ObjectMeta(name=self.name, namespace=self.namespace), spec=self.spec
        )


def parse_manifest(text: str | bytes, source: str = MANIFEST_FILE) -> Manifest:
    """Parse and validate ``fn.yaml``; raise ValidationError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error)
        raise ValidationError(
            [_problem("", f"is not valid YAML{where}: {reason}")], source
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(
            [
                _problem(
                    "",
                    "must be a mapping with at least 'name' and "
                    "'handler' (see 'fn init' for an example)",
                )
            ],
            source,
        )
    problems = Problems()
    name, namespace = _identity(data, "", problems)
    spec = check({k: v for k, v in data.items() if k not in _IDENTITY}, SPEC_FIELDS, "", problems)
    _cross_checks(spec, "", problems)
    check_traffic(spec.get("traffic") or [], name, "traffic", problems)
    problems.raise_if_any(source)
    return Manifest(name=name, namespace=namespace, spec=from_wire(FunctionSpec, spec))


def parse_function(data: Any, *, name: str | None = None, namespace: str | None = None) -> Function:
    """Validate a Function resource (``apiVersion``/``kind``/``metadata``/``spec``) from the API.

    ``name`` and ``namespace`` come from the URL when there is one; the body must agree.
    """
    problems = Problems()
    if not isinstance(data, dict):
        problems.add("", "must be a Function object (apiVersion, kind, metadata, spec)")
        problems.raise_if_any("the Function")
    if data.get("apiVersion", API_VERSION) != API_VERSION:
        problems.add("apiVersion", f"must be {API_VERSION!r}, not {data.get('apiVersion')!r}")
    if data.get("kind", "Function") != "Function":
        problems.add("kind", f"must be 'Function', not {data.get('kind')!r}")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        problems.add("metadata", "must be a mapping with 'name'")
        metadata = {}
    fn_name, fn_namespace = _identity(
        {"name": metadata.get("name", name), "namespace": metadata.get("namespace", namespace)},
        "metadata.",
        problems,
    )
    if name is not None and fn_name and fn_name != name:
        problems.add("metadata.name", f"is {fn_name!r} but the URL names {name!r}; make them agree")
    if namespace is not None and fn_namespace != namespace:
        problems.add(
            "metadata.namespace",
            f"is {fn_namespace!r} but the URL names {namespace!r}; make them agree",
        )
    spec = check(data.get("spec"), SPEC_FIELDS, "spec", problems)
    _cross_checks(spec, "spec.", problems)
    check_traffic(spec.get("traffic") or [], fn_name, "spec.traffic", problems)
    problems.raise_if_any("the Function")
    meta = ObjectMeta(
        name=fn_name,
        namespace=fn_namespace,
        labels=_strings(metadata.get("labels")),
        annotations=_strings(metadata.get("annotations")),
        resource_version=_optional_str(metadata.get("resourceVersion")),
    )
    return Function(metadata=meta, spec=from_wire(FunctionSpec, spec))


def _identity(data: dict[str, Any], prefix: str, problems: Problems) -> tuple[str, str]:
    name = data.get("name")
    message = check_name(name, what="name")
    if message:
        problems.add(f"{prefix}name", message)
    namespace = data.get("namespace") or DEFAULT_NAMESPACE
    message = check_name(namespace, what="namespace", limit=MAX_NAMESPACE_NAME)
    if message:
        problems.add(f"{prefix}namespace", message)
    return (name if isinstance(name, str) else ""), (
        namespace if isinstance(namespace, str) else DEFAULT_NAMESPACE
    )


def _cross_checks(spec: dict[str, Any], prefix: str, problems: Problems) -> None:
    check_secret_env(
        spec.get("secretEnv") or {},
        spec.get("secrets") or [],
        spec.get("env") or {},
        f"{prefix}secretEnv",
        problems,
    )
    scale = spec.get("scale") or {}
    low, high = scale.get("min", 0), scale.get("max", 0)
    if high and low > high:
        problems.add(
            f"{prefix}scale.min", f"is {low}, above scale.max {high}; lower min or raise max"
        )
    initial = scale.get("initial")
    if initial is not None and high and initial > high:
        problems.add(f"{prefix}scale.initial", f"is {initial}, above scale.max {high}")
    rollout = spec.get("rollout") or {}
    step, top = rollout.get("stepWeight", 10), rollout.get("maxWeight", 50)
    if step > top:
        problems.add(
            f"{prefix}rollout.stepWeight",
            f"is {step}, above rollout.maxWeight {top}; make the step smaller",
        )


def check_traffic(
    entries: list[dict[str, Any]], function: str, path: str, problems: Problems
) -> None:
    """Cross-checks of traffic entries: percents sum to 100 (or are all 0), one revision
    per tag, and every revision belongs to ``function``."""
    percents = [int(e.get("percent") or 0) for e in entries]
    total = sum(percents)
    if total not in (0, 100):
        problems.add(
            path,
            f"percents add up to {total}; make them add up to 100 (or leave them all out to "
            "keep only tags)",
        )
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        revision, tag = entry.get("revision"), entry.get("tag")
        if not tag and not entry.get("percent"):
            problems.add(where, "needs a percent or a tag: an entry with neither does nothing")
        if isinstance(revision, str) and function and not _revision_of(revision, function):
            problems.add(
                f"{where}.revision",
                f"{revision!r} is not a revision of function {function!r}: use its name and "
                f"number (e.g. '{function}-00002'; `fn revisions {function}` lists them)",
            )
        if isinstance(tag, str) and tag:
            if tag in seen:
                problems.add(
                    f"{where}.tag",
                    f"{tag!r} is already given to entry {seen[tag]}; tags are unique",
                )
            seen.setdefault(tag, index)


def _revision_of(revision: str, function: str) -> bool:
    number = revision[len(function) + 1 :]
    return (
        revision.startswith(function + "-")
        and revision_number(revision) is not None
        and (number.isdigit())
    )


def _problem(path: str, message: str) -> FieldError:
    return FieldError(path, message)


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
