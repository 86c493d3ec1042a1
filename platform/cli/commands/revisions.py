"""``fn revisions NAME``: a function's revisions, newest first, with traffic, tags, commit."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime

from fnmesh.platform.cli.arguments import add_home, add_namespace, add_output, connect, namespace
from fnmesh.platform.cli.client import namespaced
from fnmesh.platform.cli.output import age, render, table
from fnmesh.platform.cli.rollouts import revision_rows
from fnmesh.platform.cli.views import items, newest_first, section


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "revisions", help="list a function's revisions", description="List a function's revisions."
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    add_output(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    function = client.get_json(namespaced(ns, "functions", args.name))
    listing = client.get_json(namespaced(ns, "revisions"), {"function": args.name})
    if args.output != "table":
        print(render(listing, args.output))
        return 0
    revisions = newest_first(items(listing))
    if not revisions:
        print(f"{ns}/{args.name} has no revisions yet: deploy it with `fn deploy`")
        return 0
    now = datetime.now(UTC)
    rows = [
        [*row, age(section(revision, "metadata").get("creationTimestamp"), now)]
        for row, revision in zip(revision_rows(function, revisions), revisions, strict=True)
    ]
    headers = ["NAME", "READY", "REPLICAS", "TRAFFIC", "TAGS", "COMMIT", "CREATED"]
    print(table(headers, rows))
    return 0
