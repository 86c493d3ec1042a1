"""``fn token create|list|revoke``: the platform's API tokens (needs an admin token).

``create`` prints the secret alone on stdout (its record goes to stderr), so
``TOKEN=$(fn token create --role invoker)`` keeps just the secret; it is shown this once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_output, connect
from fnmesh.platform.cli.client import GROUP
from fnmesh.platform.cli.output import render, table

ROLES = ("admin", "deployer", "viewer", "invoker")
TOKENS = f"{GROUP}/tokens"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "token",
        help="create, list and revoke API tokens",
        description="Manage the platform's API tokens (an admin token is needed).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="create a token; its secret is shown once",
        description="Create a token. Roles: admin (everything), deployer (deploy, "
        "traffic, secrets), viewer (read, stat, tap without payloads), invoker (call "
        "private functions through the gateway).",
    )
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument(
        "--namespace", "-n", metavar="NS", help="limit it to one namespace (default: all)"
    )
    create.add_argument(
        "--expires", metavar="AGE", help="lifetime such as 30d, 12h, 90m, 2w (default: never)"
    )
    create.add_argument("--name", metavar="NAME", help="a name to recognise it by")
    add_home(create)
    add_output(create)
    create.set_defaults(run=run_create)

    listing = actions.add_parser(
        "list", help="list tokens (never their secrets)", description="List API tokens."
    )
    add_home(listing)
    add_output(listing)
    listing.set_defaults(run=run_list)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a token",
        description="Revoke a token: it is refused from now on (within 5 seconds everywhere).",
    )
    revoke.add_argument("id", metavar="ID", help="the token's id, from `fn token list`")
    add_home(revoke)
    revoke.set_defaults(run=run_revoke)


def describe(record: Mapping[str, Any]) -> str:
    parts = [f"role {record.get('role')}"]
    parts.append(f"namespace {record.get('namespace') or '(all)'}")
    parts.append(f"expires {record.get('expiresAt') or 'never'}")
    return ", ".join(parts)


def run_create(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    body: dict[str, Any] = {"role": args.role}
    for key in ("namespace", "expires", "name"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    created = connect(args, env).call_json("POST", TOKENS, body)
    if args.output != "table":
        print(render(created, args.output))
        return 0
    print(f"token {created.get('id')} created ({describe(created)})", file=sys.stderr)
    print(created.get("token"))
    print("keep it now: the secret is not stored and cannot be shown again", file=sys.stderr)
    return 0


def rows(records: list[Mapping[str, Any]]) -> list[list[object]]:
    return [
        [
            r.get("id"),
            r.get("name"),
            r.get("role"),
            r.get("namespace") or "(all)",
            r.get("created"),
            r.get("expiresAt") or "never",
            "revoked" if r.get("revokedAt") else "valid",
            r.get("lastUsed"),
        ]
        for r in records
    ]


def run_list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    listing = connect(args, env).get_json(TOKENS)
    if args.output != "table":
        print(render(listing, args.output))
        return 0
    headers = ["ID", "NAME", "ROLE", "NAMESPACE", "CREATED", "EXPIRES", "STATE", "LAST USED"]
    print(table(headers, rows(list(listing.get("items") or []))))
    return 0


def run_revoke(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    revoked = client.call_json("DELETE", f"{TOKENS}/{args.id}")
    print(f"token {revoked.get('id')} revoked ({describe(revoked)})")
    return 0
