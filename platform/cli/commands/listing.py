"""``fn list``: the functions of a namespace (or of all), one line each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, add_output, connect, namespace
from fnmesh.platform.cli.client import GROUP, ApiClient, namespaced
from fnmesh.platform.cli.output import age, render, table
from fnmesh.platform.cli.views import (
    function_url,
    items,
    name_of,
    namespace_of,
    ready,
    replica_counts,
    section,
    serving,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("list", help="list functions", description="List functions.")
    add_home(parser)
    add_namespace(parser)
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list functions of every namespace"
    )
    add_output(parser)
    parser.set_defaults(run=run)


def revisions_in(client: ApiClient, namespaces: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every revision in ``namespaces``, keyed by (namespace, revision name)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for ns in sorted(namespaces):
        for revision in items(client.get_json(namespaced(ns, "revisions"))):
            found[(ns, name_of(revision))] = revision
    return found


def rows(
    functions: list[dict[str, Any]],
    revisions: Mapping[tuple[str, str], dict[str, Any]],
    gateway: str,
    now: datetime,
    all_namespaces: bool,
) -> list[list[object]]:
    lines: list[list[object]] = []
    for function in functions:
        ns, name = namespace_of(function), name_of(function)
        taking = [revisions[(ns, r)] for r in serving(function) if (ns, r) in revisions]
        ready_count, desired = replica_counts(taking)
        status = section(function, "status")
        line: list[object] = [name]
        if all_namespaces:
            line.append(ns)
        line += [
            status.get("latestReadyRevision"),
            ready(function),
            f"{ready_count}/{desired}" if taking else None,
            function_url(function, gateway),
            age(section(function, "metadata").get("creationTimestamp"), now),
        ]
        lines.append(line)
    return lines


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    path = f"{GROUP}/functions" if args.all_namespaces else namespaced(ns, "functions")
    listing = client.get_json(path)
    if args.output != "table":
        print(render(listing, args.output))
        return 0
    functions = sorted(items(listing), key=lambda f: (namespace_of(f), name_of(f)))
    if not functions:
        where = "any namespace" if args.all_namespaces else f"namespace {ns}"
        print(f"No functions in {where}: deploy one with `fn deploy`", file=sys.stderr)
        return 0
    revisions = revisions_in(client, {namespace_of(f) for f in functions})
    headers = ["NAME", "NAMESPACE"] if args.all_namespaces else ["NAME"]
    headers += ["REVISION", "READY", "REPLICAS", "URL", "AGE"]
    now = datetime.now(UTC)
    print(
        table(headers, rows(functions, revisions, client.context.gateway, now, args.all_namespaces))
    )
    return 0
