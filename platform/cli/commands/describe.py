"""``fn describe NAME``: a function, its revisions, how they are scaled, their replicas,
and the platform's background tasks that are failing for it (from ``/healthz``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, add_output, connect, namespace
from fnmesh.platform.cli.client import ApiClient, namespaced, send
from fnmesh.platform.cli.errors import CliError
from fnmesh.platform.cli.output import age, fields, render, seconds, table
from fnmesh.platform.cli.tables import condition_table, replica_table, revision_table
from fnmesh.platform.cli.views import (
    conditions,
    function_url,
    items,
    name_of,
    newest_first,
    ready,
    replicas,
    scaling,
    section,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="show a function in detail",
        description="Show a function: spec, status, revisions and replicas.",
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    add_output(parser)
    parser.set_defaults(run=run)


def scale_summary(scale: Mapping[str, Any]) -> str:
    low = scale.get("min", 0)
    high = scale.get("max", 0)
    parts = [f"min {low}", f"max {high or 'platform default'}"]
    if scale.get("target") is not None:
        parts.append(f"target {scale['target']:g} {scale.get('metric') or 'concurrency'}")
    return ", ".join(parts)


def resource_values(resources: Mapping[str, Any]) -> tuple[str, str, str]:
    """Memory, cpu and pids as people write them; ``default`` for the platform's own."""
    # imported here: the command line starts without the model
    from fnmesh.platform.model.quantities import format_cpu, format_memory, millicores

    memory, cpu, pids = (_positive(resources.get(k)) for k in ("memory", "cpu", "pids"))
    return (
        format_memory(int(memory)) if memory is not None else "default",
        format_cpu(millicores(cpu)) if cpu is not None else "default",
        str(int(pids)) if pids is not None else "default",
    )


def _positive(value: object) -> float | None:
    """A number above zero from the API's JSON, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return value


def resources_summary(resources: Mapping[str, Any]) -> str:
    """``memory 256Mi, cpu 500m, pids 128``."""
    memory, cpu, pids = resource_values(resources)
    return f"memory {memory}, cpu {cpu}, pids {pids}"


def resources_table(revisions: list[dict[str, Any]], indent: str = "") -> str:
    """Per revision: the limits it runs with, frozen when it was stamped."""
    rows = [
        [name_of(r), *resource_values(section(section(r, "spec"), "resources"))] for r in revisions
    ]
    return table(["REVISION", "MEMORY", "CPU", "PIDS"], rows, indent=indent)


def function_fields(function: Any, gateway: str, now: datetime) -> str:
    meta, spec, status = (section(function, k) for k in ("metadata", "spec", "status"))
    artifact = section(spec, "artifact")
    built = None
    if artifact:
        built = str(artifact.get("digest") or "")
        if artifact.get("build"):
            built += f" (build {artifact['build']})"
        if artifact.get("commit"):
            built += f" (commit {artifact['commit']})"
    concurrency = spec.get("concurrency")
    env = spec.get("env") if isinstance(spec.get("env"), dict) else {}
    created = meta.get("creationTimestamp")
    pairs: list[tuple[str, object]] = [
        ("Name", meta.get("name")),
        ("Namespace", meta.get("namespace")),
        ("URL", function_url(function, gateway)),
        ("Ready", ready(function)),
        ("Handler", spec.get("handler")),
        ("Runtime", spec.get("runtime")),
        ("Visibility", spec.get("visibility")),
        ("Timeout", seconds(spec.get("timeout"))),
        ("Concurrency", "unlimited" if concurrency == 0 else concurrency),
        ("Scale", scale_summary(section(spec, "scale"))),
        ("Resources", resources_summary(section(spec, "resources"))),
        ("Env", ", ".join(f"{k}={v}" for k, v in sorted(env.items())) if env else None),
        ("Secrets", _secrets(spec)),
        ("Artifact", built),
        ("Generation", f"{meta.get('generation')} (observed {status.get('observedGeneration')})"),
        (
            "Latest",
            f"created {status.get('latestCreatedRevision') or '-'}, "
            f"ready {status.get('latestReadyRevision') or '-'}",
        ),
        ("Created", f"{created} ({age(created, now)} ago)" if created else None),
    ]
    return fields(pairs)


def _secrets(spec: Mapping[str, Any]) -> str | None:
    """The secrets a function reads, and the variables set from them: names only."""
    names = spec.get("secrets") if isinstance(spec.get("secrets"), list) else []
    mapped = spec.get("secretEnv") if isinstance(spec.get("secretEnv"), dict) else {}
    parts = [str(n) for n in names or []]
    parts += [f"{var}<-{ref}" for var, ref in sorted((mapped or {}).items())]
    return ", ".join(parts) or None


def duration(value: float | None) -> str | None:
    """A measured time: ``42ms`` below a second, ``1.25s`` above."""
    if value is None:
        return None
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def scaling_table(revisions: list[dict[str, Any]], indent: str = "") -> str:
    """Per revision: desired and ready replicas, the autoscaler's panic state and the
    reason of its last decision, and how long the last replica took to start."""
    rows = []
    for revision in revisions:
        shown = scaling(revision)
        panic = shown["panic"]
        rows.append(
            [
                name_of(revision),
                shown["desired"],
                shown["ready"],
                None if panic is None else ("yes" if panic else "no"),
                shown["reason"],
                duration(shown["lastColdStart"]),
            ]
        )
    headers = ["REVISION", "DESIRED", "READY", "PANIC", "REASON", "LAST COLD START"]
    return table(headers, rows, indent=indent)


def failing_tasks(client: ApiClient) -> list[dict[str, Any]]:
    """The platform's failing background tasks; none when /healthz cannot tell."""
    try:
        with send("GET", client.context.api + "/healthz", timeout=client.timeout) as response:
            body = json.loads(response.read())
    except (CliError, OSError, ValueError):
        return []
    found = body.get("failing") if isinstance(body, dict) else None
    return [t for t in found if isinstance(t, dict)] if isinstance(found, list) else []


def problems(function: Any, revisions: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> str:
    """The failing tasks that concern this function: its revisions' reconcile loops, and
    loops whose last error names it."""
    meta = section(function, "metadata")
    ns, name = meta.get("namespace") or "default", meta.get("name")
    mine = {f"revision {ns}/{name_of(r)}" for r in revisions}
    rows = []
    for task in tasks:
        label, error = str(task.get("name") or ""), str(task.get("lastError") or "")
        if label in mine or error.split(":")[0].endswith(f" {ns}/{name}"):
            rows.append(
                f"  {label} is failing ({task.get('consecutiveFailures', '?')} in a row): {error}"
            )
    return "\n".join(rows)


def describe(
    function: Any,
    revisions: list[dict[str, Any]],
    gateway: str,
    now: datetime,
    tasks: list[dict[str, Any]] | None = None,
) -> str:
    parts = [function_fields(function, gateway, now)]
    failing = problems(function, revisions, tasks or [])
    if failing:
        parts.append("Failing:\n" + failing)
    shown = condition_table(function, "  ") if conditions(function) else "  -"
    parts.append("Conditions:\n" + shown)
    shown = revision_table(function, revisions, now, "  ") if revisions else "  -"
    parts.append("Revisions:\n" + shown)
    if revisions:
        parts.append("Scaling:\n" + scaling_table(revisions, "  "))
        parts.append("Resources:\n" + resources_table(revisions, "  "))
    if any(replicas(r) for r in revisions):
        parts.append("Replicas:\n" + replica_table(revisions, now, "  "))
    else:
        parts.append("Replicas:\n  - (none running: the function is scaled to zero)")
    return "\n\n".join(parts)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    function = client.get_json(namespaced(ns, "functions", args.name))
    listing = client.get_json(namespaced(ns, "revisions"), {"function": args.name})
    revisions = newest_first(items(listing))
    if args.output != "table":
        print(render({"function": function, "revisions": revisions}, args.output))
        return 0
    tasks = failing_tasks(client)
    print(describe(function, revisions, client.context.gateway, datetime.now(UTC), tasks))
    return 0
