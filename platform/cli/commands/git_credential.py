"""``fn git-credential get``: git's credential helper, answering with the API token.

git runs it (``fn git-remote`` registers it for the platform's API URL only) with the
operation as the argument and the request on stdin; ``get`` prints ``username=fn`` and
``password=<token>`` from the CLI context; ``store`` and ``erase`` change nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from fnmesh.platform.cli.arguments import add_home
from fnmesh.platform.cli.context import find_home, load_context


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "git-credential",
        help="git credential helper that answers with the API token",
        description=(
            "The credential helper `fn git-remote` registers: git runs it, it prints the "
            "API token of the platform in the chosen home."
        ),
    )
    add_home(parser)
    parser.add_argument("operation", choices=("get", "store", "erase"), metavar="OPERATION")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from fnmesh.platform.git.remote import answer_credential, parse_credential_request

    request = parse_credential_request(sys.stdin)
    if args.operation != "get":
        return 0
    context = load_context(find_home(args.home, env))
    sys.stdout.write(answer_credential(request, api=context.api, token=context.token))
    sys.stdout.flush()
    return 0
