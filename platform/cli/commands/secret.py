"""``fn secret create|list|delete``: function secrets, whose values are never shown again.

``create`` sends the values once (base64 in a Secret object); ``list`` shows names, keys
and times. Nothing here prints a value, not even in an error: problems name the option,
the key and what to do.
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fnmesh.platform.cli.arguments import add_home, add_namespace, add_output, connect, namespace
from fnmesh.platform.cli.client import namespaced
from fnmesh.platform.cli.errors import CliError, UsageError
from fnmesh.platform.cli.output import age, render, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "secret",
        help="create, list and delete function secrets",
        description=(
            "Secrets hold values a function reads at /var/run/secrets/fnmesh/NAME/KEY (list "
            "them under 'secrets' in fn.yaml) or as variables ('secretEnv: {VAR: NAME/KEY}'). "
            "Values are never shown after they are created."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="create (or with --replace, replace) a secret",
        description=(
            "Create a secret from literal values and files, each option repeatable and "
            "mixable. Prefer --from-file for real secrets: a literal stays in the shell's "
            "history."
        ),
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--from-literal",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key and its value",
    )
    create.add_argument(
        "--from-file",
        action="append",
        default=[],
        metavar="[KEY=]PATH",
        help="a key and the file holding its value (KEY defaults to the file's name)",
    )
    create.add_argument(
        "--replace", action="store_true", help="replace all keys of a secret that exists"
    )
    add_home(create)
    add_namespace(create)
    create.set_defaults(run=run_create)

    listing = actions.add_parser("list", help="list secrets: names and keys, never values")
    add_home(listing)
    add_namespace(listing)
    add_output(listing)
    listing.set_defaults(run=run_list)

    delete = actions.add_parser("delete", help="delete a secret")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    add_home(delete)
    add_namespace(delete)
    delete.set_defaults(run=run_delete)


def _read_file(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing one over ``limit`` before reading it whole."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"is over {limit} bytes")
    return data


def collect(
    literals: list[str],
    files: list[str],
    read: Callable[[Path, int], bytes] = _read_file,
) -> dict[str, bytes]:
    """The secret's keys and values from the options; UsageError names every problem."""
    from fnmesh.platform.model.errors import Problems
    from fnmesh.platform.model.secrets import MAX_KEY_BYTES, check_secret_data, check_secret_key

    problems = Problems()
    data: dict[str, bytes] = {}
    origin: dict[str, str] = {}  # key -> the option that gave it, to name it in errors

    def add(option: str, key: str, value: bytes) -> None:
        problem = check_secret_key(key)
        if problem:
            problems.add(f"{option} {key}", problem)
        elif key in data:
            problems.add(f"{option} {key}", f"key {key!r} is given twice; give each key once")
        else:
            data[key] = value
            origin[key] = f"{option} {key}"

    for item in literals:
        key, equals, value = item.partition("=")
        if not equals:
            problems.add("--from-literal", "must be KEY=VALUE (e.g. password=...)")
            continue
        add("--from-literal", key, value.encode())
    for item in files:
        key, equals, path_text = item.partition("=")
        path = Path(path_text if equals else item)
        key = key if equals else path.name
        try:
            add("--from-file", key, read(path, MAX_KEY_BYTES))
        except ValueError as error:
            problems.add(
                f"--from-file {key}",
                f"{path} {error}: a key holds at most {MAX_KEY_BYTES} bytes",
            )
        except OSError as error:
            problems.add(f"--from-file {key}", f"cannot read {path}: {error.strerror}")
    if not literals and not files:
        problems.add("--from-literal", "give at least one --from-literal KEY=VALUE or --from-file")
    elif data:
        sizes = Problems()
        check_secret_data(data, sizes, "key")
        for found in sizes.errors:  # "key.NAME" -> the option that gave NAME
            problems.add(origin.get(found.path.removeprefix("key."), "secret"), found.message)
    if problems.errors:
        raise UsageError(
            "the secret was not created:\n" + "\n".join(f"  {e}" for e in problems.errors)
        )
    return data


def run_create(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from fnmesh.platform.model.secrets import check_secret_name

    problem = check_secret_name(args.name)
    if problem:
        raise UsageError(f"NAME: {problem}")
    data = collect(args.from_literal, args.from_file)
    client = connect(args, env)
    ns = namespace(args)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": args.name, "namespace": ns},
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }
    if args.replace:
        answer = client.call_json("PUT", namespaced(ns, "secrets", args.name), body)
    else:
        answer = client.call_json("POST", namespaced(ns, "secrets"), body)
    keys = ", ".join(answer.get("keys") or [])
    verb = "replaced" if args.replace else "created"
    print(f"secret {ns}/{args.name} {verb} (keys: {keys})")
    return 0


def rows(items: list[dict[str, Any]], now: datetime) -> list[list[object]]:
    out: list[list[object]] = []
    for item in items:
        meta = item.get("metadata") or {}
        out.append(
            [
                meta.get("name"),
                ", ".join(item.get("keys") or []),
                age(meta.get("creationTimestamp"), now),
                age(item.get("updated"), now),
            ]
        )
    return out


def run_list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    items = client.get_json(namespaced(namespace(args), "secrets")).get("items") or []
    if args.output != "table":
        print(render(items, args.output))
        return 0
    if not items:
        print(f"no secrets in namespace {namespace(args)}")
        return 0
    print(table(["NAME", "KEYS", "CREATED", "UPDATED"], rows(items, datetime.now(UTC))))
    return 0


def run_delete(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from fnmesh.platform.cli.commands.delete import confirmed

    client = connect(args, env)
    ns = namespace(args)
    what = f"secret {ns}/{args.name}"
    if not args.yes and sys.stdin.isatty() and not confirmed(what):
        raise CliError(f"{what} was not deleted")
    client.delete_json(namespaced(ns, "secrets", args.name))
    print(f"{what} deleted")
    return 0
