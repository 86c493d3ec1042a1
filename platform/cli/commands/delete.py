"""``fn delete NAME``: remove a function with its revisions, split and replicas."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from fnmesh.platform.cli.arguments import add_home, add_namespace, connect, namespace
from fnmesh.platform.cli.client import namespaced
from fnmesh.platform.cli.errors import CliError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "delete",
        help="delete a function",
        description="Delete a function; its revisions and replicas go with it.",
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(run=run)


def confirmed(what: str) -> bool:
    try:
        answer = input(f"Delete {what}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    what = f"function {ns}/{args.name}"
    if not args.yes and sys.stdin.isatty() and not confirmed(what):
        raise CliError(f"{what} was not deleted")
    client.delete_json(namespaced(ns, "functions", args.name))
    print(f"{what} deleted")
    return 0
