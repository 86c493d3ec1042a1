"""Shared pieces of the Kubernetes tests: the repository's paths and schema validators."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from crdschema import CRD_DIR, crd_schema, load_crds

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fnmesh"
KUBERNETES_VERSION = "1.33"

Validate = Callable[[dict[str, Any]], None]


def pruning(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that refuses what the API server would prune (unknown fields).

    The API server drops fields a structural schema does not declare unless the node says
    x-kubernetes-preserve-unknown-fields; jsonschema accepts them silently, so close every
    such object (metadata aside: the server validates it separately).
    """
    out = copy.deepcopy(schema)
    # apiVersion, kind and metadata are implicit in every custom resource
    out.setdefault("properties", {})
    for implicit in ("apiVersion", "kind"):
        out["properties"].setdefault(implicit, {"type": "string"})
    out["properties"].setdefault("metadata", {"type": "object"})

    def close(node: dict[str, Any], *, top: bool = False) -> None:
        if node.get("type") == "object" and "properties" in node:
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for name, child in node["properties"].items():
                if not (top and name == "metadata"):
                    close(child)
        if isinstance(node.get("items"), dict):
            close(node["items"])

    close(out, top=True)
    return out


def validate_custom(obj: dict[str, Any], crds: dict[tuple[str, str], dict[str, Any]]) -> None:
    group, _, version = obj["apiVersion"].partition("/")
    crd = crds.get((group, obj["kind"]))
    assert crd is not None, f"no CRD in {CRD_DIR} for {obj['apiVersion']} {obj['kind']}"
    jsonschema.validate(obj, pruning(crd_schema(crd, version)))


@pytest.fixture(scope="session")
def chart_crds() -> dict[tuple[str, str], dict[str, Any]]:
    return load_crds()


@pytest.fixture(scope="session")
def validate(chart_crds: dict[tuple[str, str], dict[str, Any]]) -> Validate:
    """Validate any object: built-in kinds strictly against Kubernetes' own schemas,
    custom kinds against the chart's CRDs, refusing fields the server would prune."""

    def check(obj: dict[str, Any]) -> None:
        group = obj["apiVersion"].partition("/")[0] if "/" in obj["apiVersion"] else ""
        if group.endswith("smi-spec.io") or group in ("fnmesh.dev", "kopf.dev"):
            validate_custom(obj, chart_crds)
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)

    return check
