"""``fn build-log NAME BUILD``: the whole log of one build."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from fnmesh.platform.cli.arguments import add_home, add_namespace, connect, namespace
from fnmesh.platform.cli.client import namespaced


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "build-log", help="print a build's log", description="Print the whole log of a build."
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("build", metavar="BUILD", help="the build id (`fn deploy` prints it)")
    add_home(parser)
    add_namespace(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    text = client.get_text(
        namespaced(namespace(args), "functions", args.name, "builds", args.build, "log")
    )
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    return 0
