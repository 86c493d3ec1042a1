"""``fn init NAME``: a new function folder from a template."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from fnmesh.platform.cli.errors import CliError, UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "init",
        help="create a function folder from a template",
        description="Create a function folder (fn.yaml, code) ready for `fn deploy`.",
    )
    parser.add_argument("name", metavar="NAME", help="the function's name (a DNS-1123 label)")
    parser.add_argument("--dir", metavar="DIR", help="the folder to create (default: ./NAME)")
    parser.add_argument(
        "--template", default="python", metavar="TEMPLATE", help="template (default: python)"
    )
    parser.set_defaults(run=run)


def shown(path: Path) -> str:
    """``path`` as the user would type it: relative to here when it is below here."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return str(relative)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from fnmesh.functions.templates import render
    from fnmesh.platform.model import check_name

    problem = check_name(args.name, what="the function name")
    if problem:
        raise UsageError(problem)
    dest = Path(args.dir) if args.dir else Path(args.name)
    try:
        created = render(args.template, args.name, dest)
    except (FileExistsError, ValueError) as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise CliError(f"cannot write {dest}: {error.strerror or error}") from None
    print(f"Created function {args.name} in {shown(dest)}:")
    for path in created:
        print(f"  {shown(path)}")
    print(f"Next: cd {args.dir or args.name} && fn deploy")
    return 0
