"""``fn rollback NAME [REVISION]`` and ``fn promote NAME``: move all traffic in one step.

Rollback sends every request to an earlier revision (by default the one before the
newest, or the stable one of a rollout in progress) and holds the newest back; promote
sends every request to the newest revision and ends its rollout. Both drop weights
pinned by hand and keep tags; both wait until the platform has done it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, connect, namespace
from fnmesh.platform.cli.client import namespaced, with_query
from fnmesh.platform.cli.errors import CliError
from fnmesh.platform.cli.rollouts import command_done, command_id, revision_name
from fnmesh.platform.cli.views import section, traffic

WAIT = 20.0  # seconds the platform may take to carry the request out


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    back = subparsers.add_parser(
        "rollback",
        help="send all traffic back to an earlier revision",
        description=(
            "Send all of a function's traffic to an earlier revision at once: REVISION "
            "(a name or a number), else the stable revision of a rollout in progress, else "
            "the revision before the one serving now. The newest revision is held back "
            "until the next deploy or `fn promote`."
        ),
    )
    back.add_argument("name", metavar="NAME")
    back.add_argument("revision", metavar="REVISION", nargs="?")
    add_home(back)
    add_namespace(back)
    back.set_defaults(run=run_rollback)
    ahead = subparsers.add_parser(
        "promote",
        help="send all traffic to the newest revision",
        description="Send all of a function's traffic to its newest revision, ending its rollout.",
    )
    ahead.add_argument("name", metavar="NAME")
    add_home(ahead)
    add_namespace(ahead)
    ahead.set_defaults(run=run_promote)


def run_rollback(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    body = {"revision": revision_name(args.name, args.revision)} if args.revision else None
    function = _ask(args, env, "rollback", body)
    print(f"{namespace(args)}/{args.name} rolled back: {_shares(function)}")
    return 0


def run_promote(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    function = _ask(args, env, "promote", None)
    print(f"{namespace(args)}/{args.name} promoted: {_shares(function)}")
    return 0


def _ask(args: argparse.Namespace, env: Mapping[str, str], action: str, body: Any) -> Any:
    client = connect(args, env)
    client.timeout = max(client.timeout, WAIT + 10)
    ns = namespace(args)
    path = with_query(namespaced(ns, "functions", args.name, action), {"wait": int(WAIT)})
    function = client.call_json("POST", path, body if body is not None else {})
    ident = command_id(function)
    if ident is None or not command_done(function, ident):
        raise CliError(
            f"the {action} of {ns}/{args.name} was asked for but not carried out within "
            f"{WAIT:g}s: is the platform's controller running? `fn traffic {args.name}` shows "
            "where traffic goes"
        )
    message = section(section(function, "status"), "rollout").get("message") or ""
    if "refused" in message:
        raise CliError(f"{ns}/{args.name}: {message}")
    return function


def _shares(function: Any) -> str:
    shares = traffic(function)
    return ", ".join(f"{name} takes {pct}%" for name, pct in shares.items() if pct) or "-"
