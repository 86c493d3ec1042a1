"""The OpenAPI 3 document of the API, with the Function schema taken from the model."""

from __future__ import annotations

import functools
from typing import Any

from fnmesh.platform.model.access import ROLES
from fnmesh.platform.model.schema import openapi as schema_of
from fnmesh.platform.model.spec_schema import SPEC_FIELDS, TRAFFIC_FIELDS

GROUP = "/apis/fnmesh.dev/v1alpha1"
NS = GROUP + "/namespaces/{namespace}"

_OPERATIONS: list[tuple[str, str, str, str | None, str]] = [
    # path, method, summary, request body schema, response schema
    ("/healthz", "get", "Health: 503 naming failing background tasks", None, "Health"),
    (GROUP + "/functions", "get", "List functions in every namespace", None, "FunctionList"),
    (NS + "/functions", "get", "List functions", None, "FunctionList"),
    (NS + "/functions", "post", "Create a function", "Function", "Function"),
    (NS + "/functions/{name}", "get", "Read a function", None, "Function"),
    (
        NS + "/functions/{name}",
        "put",
        "Replace a function (optimistic concurrency)",
        "Function",
        "Function",
    ),
    (
        NS + "/functions/{name}",
        "delete",
        "Delete a function, its revisions and replicas",
        None,
        "Function",
    ),
    (
        NS + "/functions/{name}/source",
        "post",
        "Upload source (gzip'ed tar), build it and deploy; streams NDJSON build events",
        "Bundle",
        "BuildEvents",
    ),
    (NS + "/functions/{name}/builds/{build}/log", "get", "A build's log", None, "Text"),
    (NS + "/functions/{name}/logs", "get", "Replica output (tail, follow)", None, "Text"),
    (
        NS + "/functions/{name}/stats",
        "get",
        "Golden metrics per revision: RPS, success rate, p50/p95/p99 (?window=seconds)",
        None,
        "Stats",
    ),
    (
        NS + "/functions/{name}/tap",
        "get",
        "Live requests as NDJSON events (?method=, ?path= prefix, ?revision=)",
        None,
        "TapEvents",
    ),
    (
        NS + "/functions/{name}/traffic",
        "put",
        "Pin traffic by hand: weights (summing to 100) and tags (entries at 0 %)",
        "TrafficBody",
        "Function",
    ),
    (
        NS + "/functions/{name}/rollback",
        "post",
        "Send all traffic back to an earlier revision (body optional: {revision}; ?wait=s)",
        "RollbackBody",
        "Function",
    ),
    (
        NS + "/functions/{name}/promote",
        "post",
        "Send all traffic to the newest revision, ending its rollout (?wait=s)",
        None,
        "Function",
    ),
    (NS + "/secrets", "get", "List secrets: names and keys, never values", None, "SecretList"),
    (NS + "/secrets", "post", "Create a secret", "SecretBody", "SecretInfo"),
    (NS + "/secrets/{name}", "get", "Read a secret's keys (never its values)", None, "SecretInfo"),
    (NS + "/secrets/{name}", "put", "Create or replace a secret", "SecretBody", "SecretInfo"),
    (NS + "/secrets/{name}", "delete", "Delete a secret no function lists", None, "SecretInfo"),
    (NS + "/revisions", "get", "List revisions (filter: ?function=NAME)", None, "RevisionList"),
    (NS + "/revisions/{name}", "get", "Read a revision", None, "Revision"),
    (
        NS + "/trafficsplits/{name}",
        "get",
        "Read a function's SMI TrafficSplit",
        None,
        "TrafficSplit",
    ),
    (NS + "/traffictargets", "get", "List SMI TrafficTargets", None, "TrafficTargetList"),
    (
        NS + "/traffictargets",
        "post",
        "Let service accounts call a function's",
        "TrafficTarget",
        "TrafficTarget",
    ),
    (NS + "/traffictargets/{name}", "delete", "Remove a TrafficTarget", None, "TrafficTarget"),
    (GROUP + "/tokens", "get", "List API tokens (admin; no secrets)", None, "TokenList"),
    (
        GROUP + "/tokens",
        "post",
        "Create an API token (admin); the secret is in this answer only",
        "TokenRequest",
        "Token",
    ),
    (GROUP + "/tokens/{id}", "delete", "Revoke an API token (admin)", None, "Token"),
    ("/metrics", "get", "The platform's Prometheus metrics (viewer or above)", None, "Text"),
]

_MEDIA = {
    "Bundle": "application/gzip",
    "BuildEvents": "application/x-ndjson",
    "TapEvents": "application/x-ndjson",
    "Text": "text/plain",
}


def _object(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "resourceVersion": {"type": "string"},
                    "generation": {"type": "integer"},
                    "uid": {"type": "string"},
                    "creationTimestamp": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "spec": spec or {"type": "object"},
            "status": {"type": "object"},
        },
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(name: str) -> dict[str, Any]:
    media = _MEDIA.get(name, "application/json")
    schema = (
        {"type": "string", "format": "binary"}
        if name == "Bundle"
        else ({"type": "string"} if media != "application/json" else _ref(name))
    )
    return {media: {"schema": schema}}


@functools.cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method, summary, body, result in _OPERATIONS:
        parameters = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in path.split("/")
            if part.startswith("{")
        ]
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK", "content": _content(result)},
                "default": {
                    "description": "A Status object naming what is wrong",
                    "content": {"application/json": {"schema": _ref("Status")}},
                },
            },
        }
        if path != "/healthz":
            operation["security"] = [{"bearer": []}]
        if body:
            operation["requestBody"] = {
                "required": body != "RollbackBody",
                "content": _content(body),
            }
        paths.setdefault(path, {})[method] = operation
    lists = {
        f"{kind}List": {
            "type": "object",
            "properties": {
                "kind": {"type": "string"},
                "items": {"type": "array", "items": _ref(kind)},
            },
        }
        for kind in ("Function", "Revision", "TrafficTarget")
    }
    lists["SecretList"] = {
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "items": {"type": "array", "items": _ref("SecretInfo")},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "fnmesh API", "version": "v1alpha1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Function": _object(schema_of(SPEC_FIELDS)),
                "Revision": _object(),
                "TrafficSplit": _object(),
                "TrafficTarget": _object(),
                **lists,
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "failing"]},
                        "failing": {"type": "array", "items": {"type": "object"}},
                        "tasks": {"type": "integer"},
                    },
                },
                "Token": {
                    "type": "object",
                    "properties": {
                        key: {"type": "string", "nullable": True}
                        for key in [
                            "id",
                            "name",
                            "role",
                            "namespace",
                            "created",
                            "expiresAt",
                            "revokedAt",
                            "lastUsed",
                            "token",
                        ]
                    },
                },
                "TokenList": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string"},
                        "items": {"type": "array", "items": _ref("Token")},
                    },
                },
                "TokenRequest": {
                    "type": "object",
                    "required": ["role"],
                    "properties": {
                        "role": {"type": "string", "enum": list(ROLES)},
                        "namespace": {"type": "string"},
                        "expires": {"type": "string", "example": "30d"},
                        "name": {"type": "string"},
                    },
                },
                "SecretBody": {
                    "type": "object",
                    "required": ["metadata", "data"],
                    "properties": {
                        "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
                        "type": {"type": "string", "enum": ["Opaque"]},
                        "data": {
                            "type": "object",
                            "description": "each key's value, base64-encoded",
                            "additionalProperties": {"type": "string", "format": "byte"},
                        },
                    },
                },
                "SecretInfo": {
                    "type": "object",
                    "properties": {
                        "metadata": {"type": "object"},
                        "keys": {"type": "array", "items": {"type": "string"}},
                        "updated": {"type": "string"},
                    },
                },
                "TrafficBody": {
                    "type": "object",
                    "required": ["traffic"],
                    "properties": {
                        "traffic": {"type": "array", "items": schema_of(TRAFFIC_FIELDS)},
                        "resourceVersion": {"type": "string"},
                    },
                },
                "RollbackBody": {
                    "type": "object",
                    "properties": {"revision": {"type": "string"}},
                },
                "Stats": {
                    "type": "object",
                    "properties": {
                        "function": {"type": "string"},
                        "namespace": {"type": "string"},
                        "revisions": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Status": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string"},
                        "code": {"type": "integer"},
                        "reason": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                },
            },
        },
    }
