"""``fn rollout NAME``: follow the rollout of a function's newest revision until it is done.

Prints a line whenever the traffic or the rollout's state changes. Exit code 0 when the
newest revision serves all traffic (promoted), 1 when it was rolled back or failed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping

from fnmesh.platform.cli.arguments import add_home, add_namespace, connect, namespace
from fnmesh.platform.cli.client import namespaced
from fnmesh.platform.cli.errors import FAILURE, OK, CliError
from fnmesh.platform.cli.rollouts import progress

POLL = 0.5  # seconds between looks at the function


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rollout",
        help="follow a rollout until it is promoted or rolled back",
        description=(
            "Follow the rollout of a function's newest revision live. Exits 0 once it is "
            "promoted (serves all traffic), 1 once it is rolled back or failed."
        ),
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="give up after this long (default: wait as long as it takes)",
    )
    parser.add_argument(
        "--poll", type=float, default=POLL, metavar="SECONDS", help="how often to look"
    )
    add_home(parser)
    add_namespace(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    path = namespaced(ns, "functions", args.name)
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    shown = ""
    while True:
        state = progress(client.get_json(path))
        if state.line != shown:
            print(f"{ns}/{args.name}: {state.line}", flush=True)
            shown = state.line
        if state.state == "promoted":
            print(f"{ns}/{args.name}: promoted", flush=True)
            return OK
        if state.state in ("rolled back", "failed"):
            print(f"{ns}/{args.name}: {state.state}", flush=True)
            return FAILURE
        if deadline is not None and time.monotonic() >= deadline:
            raise CliError(
                f"the rollout of {ns}/{args.name} was not over after {args.timeout:g}s "
                f"(it is {state.state}); `fn traffic {args.name}` shows where it stands"
            )
        time.sleep(max(0.01, args.poll))
