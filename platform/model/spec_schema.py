"""The schema of a Function's spec -- what ``fn.yaml`` and the API accept."""

from __future__ import annotations

import re
from typing import Any

from fnmesh.platform.model.names import MAX_TAG, check_name
from fnmesh.platform.model.schema import Field
from fnmesh.platform.model.secrets import (
    MAX_SECRET_NAME,
    check_secret_name,
    check_secret_names,
)

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_HANDLER = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$")
_RUNTIME = re.compile(r"^python(3(\.[0-9]+)?)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
RESERVED_ENV_PREFIX = "FNMESH_"
RESERVED_ENV = frozenset({"PORT", "PYTHONPATH", "PYTHONHOME"})


def _handler(value: Any) -> str | None:
    if _HANDLER.match(value):
        return None
    return f"{value!r} is not 'module:function' (e.g. 'main:handle' for handle() in main.py)"


def _runtime(value: Any) -> str | None:
    if _RUNTIME.match(value):
        return None
    return f"{value!r} is not a runtime this platform runs: use 'python' or 'python3.11'"


def _env(value: Any) -> str | None:
    bad = [k for k in value if not _ENV_NAME.match(k)]
    if bad:
        return f"{bad[0]!r} is not a valid variable name: use letters, digits and '_'"
    reserved = [k for k in value if k in RESERVED_ENV or k.startswith(RESERVED_ENV_PREFIX)]
    if reserved:
        return f"{reserved[0]!r} is set by the platform; choose another name"
    return None


def _service_account(value: Any) -> str | None:
    return check_name(value, what="service account", limit=63)


def _tag(value: Any) -> str | None:
    return check_name(value, what="tag", limit=MAX_TAG)


def _digest(value: Any) -> str | None:
    return None if _DIGEST.match(value) else "must be 'sha256:' followed by 64 hex digits"


SCALE_FIELDS: dict[str, Field] = {
    "min": Field("integer", "fewest replicas; 0 lets the function scale to zero", minimum=0),
    "max": Field("integer", "most replicas; 0 means no limit but the platform's", minimum=0),
    "initial": Field("integer", "replicas a new revision starts with", minimum=0),
    "target": Field("number", "per-replica target of the metric", minimum=0.01),
    "metric": Field("enum", "what to scale on", choices=("concurrency", "rps")),
    "targetUtilization": Field(
        "number", "fraction of the target to aim for (0.7 = 70 %)", minimum=0.01, maximum=1.0
    ),
    "activationScale": Field("integer", "replicas to start when scaling up from zero", minimum=1),
    "stableWindow": Field(
        "duration", "window averaged for stable scaling", minimum=1, maximum=3600
    ),
    "panicWindowPercentage": Field(
        "number", "panic window as a percentage of the stable window", minimum=1, maximum=100
    ),
    "panicThresholdPercentage": Field(
        "number", "demand over capacity (percent) that starts panic mode", minimum=110, maximum=1000
    ),
    "scaleDownDelay": Field(
        "duration", "how long demand must stay low before scaling down", minimum=0, maximum=3600
    ),
    "scaleToZeroGracePeriod": Field(
        "duration", "idle time before scaling to zero", minimum=0, maximum=3600
    ),
    "targetBurstCapacity": Field(
        "number",
        "spare capacity to keep before the activator leaves the path (-1: always)",
        minimum=-1,
    ),
}

ROLLOUT_FIELDS: dict[str, Field] = {
    "strategy": Field("enum", "how a new revision takes traffic", choices=("immediate", "canary")),
    "stepWeight": Field("integer", "percent of traffic moved per step", minimum=1, maximum=100),
    "maxWeight": Field(
        "integer", "weight after which the canary is promoted", minimum=1, maximum=100
    ),
    "interval": Field("duration", "time between analysis steps", minimum=0.1, maximum=3600),
    "threshold": Field("integer", "failed checks before rolling back", minimum=1),
    "minSuccessRate": Field(
        "number", "lowest acceptable success rate in percent", minimum=0, maximum=100
    ),
    "maxLatencyP99": Field("duration", "highest acceptable p99 latency", minimum=0.001),
    "minRequests": Field("integer", "requests an interval needs before it is judged", minimum=0),
}

MIN_MEMORY = 16 * 1024 * 1024  # a Python runtime does not start in less
MIN_CPU_CORES = 0.01  # 10m: one millisecond per 100 ms scheduling period
MIN_PIDS = 8  # the runtime's own threads

RESOURCES_FIELDS: dict[str, Field] = {
    "memory": Field(
        "memory",
        "most memory a replica's runtime may use, in bytes ('256Mi' in fn.yaml); "
        "over it the runtime is killed",
        minimum=MIN_MEMORY,
    ),
    "cpu": Field(
        "cpu",
        "cpu time a replica's runtime may use, in cores ('500m' or 0.5 in fn.yaml)",
        minimum=MIN_CPU_CORES,
    ),
    "pids": Field(
        "integer",
        "most processes and threads a replica's runtime may have at once",
        minimum=MIN_PIDS,
    ),
}

ARTIFACT_FIELDS: dict[str, Field] = {
    "digest": Field("string", "content digest of the built source", required=True, check=_digest),
    "environment": Field("string", "key of the dependency environment it runs with"),
    "build": Field("string", "the build that produced it"),
    "commit": Field("string", "the git commit it was built from"),
}

TRAFFIC_FIELDS: dict[str, Field] = {
    "revision": Field(
        "string", "the revision, by name (e.g. 'hello-00002')", required=True, max_length=63
    ),
    "percent": Field("integer", "its share of requests; 0 for a tag only", minimum=0, maximum=100),
    "tag": Field(
        "string",
        "a name that reaches the revision whatever its share: /fn/<name>@<tag>/ and "
        "<tag>-<name>.<namespace>.<domain>",
        check=_tag,
    ),
}

SPEC_FIELDS: dict[str, Field] = {
    "handler": Field(
        "string",
        "the function to call, as 'module:function' (e.g. 'main:handle')",
        required=True,
        check=_handler,
    ),
    "runtime": Field("string", "the language runtime, 'python' or 'python3.X'", check=_runtime),
    "env": Field("map", "environment variables for the function", check=_env),
    "timeout": Field("duration", "longest a request may take", minimum=0.001, maximum=3600),
    "concurrency": Field(
        "integer",
        "most requests one replica serves at once; 0 = no limit",
        minimum=0,
        maximum=10000,
    ),
    "visibility": Field("enum", "who may call it", choices=("public", "private")),
    "serviceAccount": Field("string", "the identity its replicas run as", check=_service_account),
    "scale": Field("object", "autoscaling settings", fields=SCALE_FIELDS),
    "resources": Field(
        "object",
        "limits of each replica's runtime; unset ones take the platform's defaults",
        fields=RESOURCES_FIELDS,
    ),
    "rollout": Field("object", "how new revisions take traffic", fields=ROLLOUT_FIELDS),
    "artifact": Field("object", "the built source (set by deploy)", fields=ARTIFACT_FIELDS),
    # secrets: names only, never values (see model.secrets)
    "secrets": Field(
        "list",
        "secrets the function may read, by name: files /var/run/secrets/fnmesh/<name>/<key>",
        items=Field(
            "string",
            "a secret's name (`fn secret list` shows them)",
            max_length=MAX_SECRET_NAME,
            check=check_secret_name,
        ),
        check=check_secret_names,
    ),
    "secretEnv": Field(
        "map",
        "environment variables set from one key of a listed secret: VAR: <name>/<key>",
        check=_env,
    ),
    "traffic": Field(
        "list",
        "traffic pinned by hand: revisions with their percent (summing to 100) and tags; "
        "when no entry has a percent, the rollout chooses the weights",
        items=Field("object", "a revision's share and tag", fields=TRAFFIC_FIELDS),
    ),
}
