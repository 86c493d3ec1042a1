"""``fn traffic NAME``: show a function's traffic; pin weights and set tags by hand."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, add_output, connect, namespace
from fnmesh.platform.cli.client import ApiClient, namespaced
from fnmesh.platform.cli.output import render
from fnmesh.platform.cli.rollouts import pinned, progress, traffic_spec, traffic_table
from fnmesh.platform.cli.views import section

SETTLE_TIMEOUT = 15.0  # how long to wait for the controller to apply new traffic


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "traffic",
        help="show or set a function's traffic and tags",
        description=(
            "Show which revisions take a function's requests and which tags reach them. "
            "--set pins weights by hand (the rollout waits until --auto); --tag makes a "
            "revision reachable at /fn/NAME@TAG/ whatever its weight."
        ),
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument(
        "--set",
        dest="weights",
        nargs="+",
        default=[],
        metavar="REV=PCT",
        help="pin weights, e.g. --set hello-00001=80 hello-00002=20 (summing to 100)",
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="drop pinned weights: the rollout chooses them again",
    )
    parser.add_argument(
        "--tag", action="append", default=[], metavar="TAG=REV", help="tag a revision"
    )
    parser.add_argument("--untag", action="append", default=[], metavar="TAG", help="remove a tag")
    add_home(parser)
    add_namespace(parser)
    add_output(parser)
    parser.set_defaults(run=run)


def show(function: Any, gateway: str) -> str:
    parts = [traffic_table(function, gateway)]
    state = progress(function)
    parts.append(f"rollout: {state.state}: {state.line}")
    if pinned(function):
        parts.append("weights are pinned by hand: `fn traffic --auto` hands them back")
    return "\n".join(parts)


def settled(client: ApiClient, ns: str, name: str, generation: int) -> Any:
    """The function once the controller has seen ``generation`` (or as it is at the deadline)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        function = client.get_json(namespaced(ns, "functions", name))
        observed = section(function, "status").get("observedGeneration")
        if (isinstance(observed, int) and observed >= generation) or time.monotonic() > deadline:
            return function
        time.sleep(0.05)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    ns = namespace(args)
    function = client.get_json(namespaced(ns, "functions", args.name))
    if args.weights or args.tag or args.untag or args.auto:
        body = {
            "traffic": traffic_spec(
                function, weights=args.weights, tag=args.tag, untag=args.untag, auto=args.auto
            ),
            "resourceVersion": section(function, "metadata").get("resourceVersion"),
        }
        written = client.call_json("PUT", namespaced(ns, "functions", args.name, "traffic"), body)
        generation = int(section(written, "metadata").get("generation") or 0)
        function = settled(client, ns, args.name, generation)
    if args.output != "table":
        print(render(as_data(function), args.output))
        return 0
    print(show(function, client.context.gateway))
    return 0


def as_data(function: Any) -> dict[str, Any]:
    """What ``-o json|yaml`` shows: the traffic pinned by hand, the traffic now, the rollout."""
    spec, status = section(function, "spec"), section(function, "status")
    return {
        "function": section(function, "metadata").get("name"),
        "pinned": spec.get("traffic") or [],
        "traffic": status.get("traffic") or [],
        "rollout": status.get("rollout"),
    }
