"""The CustomResourceDefinitions of ``functions``, ``revisions`` and ``tokens.fnmesh.dev``.

The spec schemas come from the model's own validation schema (``schema.openapi``), so the
cluster accepts exactly what the embedded platform accepts. The chart ships the result;
refresh it after changing the model with::

    python -m fnmesh.platform.runtime.kubernetes.crds > charts/fnmesh/crds/fnmesh.yaml
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import yaml

from fnmesh.platform.model.names import check_name
from fnmesh.platform.model.resources import GROUP
from fnmesh.platform.model.schema import Field, openapi
from fnmesh.platform.model.spec_schema import SPEC_FIELDS

VERSION = "v1alpha1"
HEADER = (
    "# CustomResourceDefinitions of fnmesh.dev, written by\n"
    "#   python -m fnmesh.platform.runtime.kubernetes.crds > charts/fnmesh/crds/fnmesh.yaml\n"
    "# from the model's validation schema: change the model, then run it again.\n"
)


def _function_name(value: Any) -> str | None:
    return check_name(value, what="function")


# A revision freezes these fields of its function's spec (see model.revision_spec_for).
REVISION_FIELDS: dict[str, Field] = {
    "function": Field(
        "string", "the function this revision belongs to", required=True, check=_function_name
    ),
    "handler": SPEC_FIELDS["handler"],
    "artifact": dataclasses.replace(SPEC_FIELDS["artifact"], required=True),
    "runtime": SPEC_FIELDS["runtime"],
    "env": SPEC_FIELDS["env"],
    "timeout": SPEC_FIELDS["timeout"],
    "concurrency": SPEC_FIELDS["concurrency"],
    "visibility": SPEC_FIELDS["visibility"],
    "serviceAccount": SPEC_FIELDS["serviceAccount"],
    "scale": SPEC_FIELDS["scale"],
    "secrets": SPEC_FIELDS["secrets"],
    "secretEnv": SPEC_FIELDS["secretEnv"],
    "resources": SPEC_FIELDS["resources"],
}

_CONDITIONS: dict[str, Any] = {
    "type": "array",
    "description": "the latest observations of the resource's state",
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string", "description": "kind of condition, e.g. Ready"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string", "description": "one CamelCase word for why"},
            "message": {"type": "string", "description": "what happened, for people"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
    },
}

FUNCTION_STATUS: dict[str, Any] = {
    "type": "object",
    "description": "what the platform observed; written by the controller",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "observedGeneration": {"type": "integer", "format": "int64"},
        "latestCreatedRevision": {"type": "string"},
        "latestReadyRevision": {"type": "string"},
        "revisionCount": {"type": "integer"},
        "url": {"type": "string", "description": "where the function is invoked"},
        "traffic": {
            "type": "array",
            "description": "the share of requests each revision receives",
            "items": {
                "type": "object",
                "required": ["revision", "percent"],
                "properties": {
                    "revision": {"type": "string"},
                    "percent": {"type": "integer", "minimum": 0, "maximum": 100},
                    "tag": {"type": "string"},
                },
            },
        },
        "conditions": _CONDITIONS,
    },
}

REVISION_STATUS: dict[str, Any] = {
    "type": "object",
    "description": "the revision's replicas as the platform sees them",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "desiredReplicas": {"type": "integer", "minimum": 0},
        "readyReplicas": {"type": "integer", "minimum": 0},
        "replicas": {
            "type": "array",
            "items": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "address": {"type": "string"},
                    "ready": {"type": "boolean"},
                    "pid": {"type": "integer"},
                    "startedAt": {"type": "string"},
                    "restarts": {"type": "integer", "minimum": 0},
                    "metricsUrl": {"type": "string"},
                },
            },
        },
        "conditions": _CONDITIONS,
        "lastColdStartSeconds": {"type": "number"},
    },
}

_READY = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
# A CEL transition rule: an update may not change the node it sits on.
IMMUTABLE = {
    "rule": "self == oldSelf",
    "message": "a revision's spec is immutable: deploy again to stamp a new revision",
}
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _root_schema(spec: dict[str, Any], status: dict[str, Any], what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": what,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def _crd(
    *, kind: str, plural: str, short: str, schema: dict[str, Any], columns: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "fnmesh"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["fnmesh"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def function_crd() -> dict[str, Any]:
    """The Function CRD: a developer's declared function."""
    spec = {**openapi(SPEC_FIELDS), "description": "the function as its developer declared it"}
    return _crd(
        kind="Function",
        plural="functions",
        short="fn",
        schema=_root_schema(spec, FUNCTION_STATUS, "A serverless function run by fnmesh."),
        columns=[
            _READY,
            {"name": "Latest", "type": "string", "jsonPath": ".status.latestReadyRevision"},
            {"name": "URL", "type": "string", "jsonPath": ".status.url"},
            _AGE,
        ],
    )


def revision_crd() -> dict[str, Any]:
    """The Revision CRD: an immutable snapshot of a function's code and configuration.

    The API server itself refuses any change to a stamped revision's spec (a CEL rule),
    so not even ``kubectl edit`` can make a revision differ from what was built.
    """
    spec = {
        **openapi(REVISION_FIELDS),
        "description": "the function's spec, frozen",
        "x-kubernetes-validations": [IMMUTABLE],
    }
    return _crd(
        kind="Revision",
        plural="revisions",
        short="rev",
        schema=_root_schema(spec, REVISION_STATUS, "An immutable revision of a Function."),
        columns=[
            {"name": "Function", "type": "string", "jsonPath": ".spec.function"},
            _READY,
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
            _AGE,
        ],
    )


def token_crd() -> dict[str, Any]:
    """The Token CRD: an API token's SHA-256 and role, kept by the Kubernetes store."""
    spec = {
        "type": "object",
        "description": "a token of the platform's API; the secret itself is never stored",
        "required": ["sha256"],
        "properties": {
            "sha256": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": "SHA-256 of the token, hex",
            },
            "role": {
                "type": "string",
                "enum": ["admin", "deployer", "viewer", "invoker"],
                "description": "what the token may do",
            },
            "namespace": {"type": "string", "description": "the one namespace it may act in"},
            "expiresAt": {"type": "string", "description": "RFC 3339; absent: never"},
            "revokedAt": {"type": "string", "description": "RFC 3339; absent: valid"},
            "description": {"type": "string", "description": "a name people gave it"},
        },
    }
    status = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    crd = _crd(
        kind="Token",
        plural="tokens",
        short="fntoken",
        schema=_root_schema(spec, status, "A token of the fnmesh API (its hash only)."),
        columns=[{"name": "Role", "type": "string", "jsonPath": ".spec.role"}, _AGE],
    )
    del crd["spec"]["versions"][0]["subresources"]  # tokens have no status of their own
    return crd


def crds() -> list[dict[str, Any]]:
    return [function_crd(), revision_crd(), token_crd()]


def render() -> str:
    """The CRDs as one YAML stream, as the chart ships them."""
    body = yaml.safe_dump_all(crds(), sort_keys=False, explicit_start=True, width=100)
    return HEADER + body


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
