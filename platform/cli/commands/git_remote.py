"""``fn git-remote NAME``: the function's git remote; inside a work tree, add it as ``fn``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from fnmesh.platform.cli.arguments import add_home, add_namespace, namespace
from fnmesh.platform.cli.context import find_home, load_context
from fnmesh.platform.cli.errors import CliError, UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "git-remote",
        help="print a function's git remote and add it to this repository",
        description=(
            "Print the git remote URL of a function. Inside a git work tree, also add it "
            "as the remote 'fn' and let git take the API token from this CLI (a credential "
            "helper; the token is never written into the repository). Then `git push fn "
            "main` builds and deploys the pushed commit; a first push creates the function."
        ),
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    parser.add_argument(
        "--path",
        metavar="FOLDER",
        default="",
        help="the repository's sub-folder that holds fn.yaml (default: the root)",
    )
    parser.add_argument(
        "--remote", metavar="REMOTE", default="fn", help="the remote's name (default: fn)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from fnmesh.platform.git.remote import RemoteError, helper_command, set_up_remote
    from fnmesh.platform.git.urls import PathError, check_subdir, remote_url
    from fnmesh.platform.model import check_name

    ns = namespace(args)
    problem = check_name(args.name, what="function name") or check_name(
        ns, what="namespace", limit=63
    )
    if problem is not None:
        raise UsageError(problem)
    try:
        subdir = check_subdir(args.path)
    except PathError as error:
        raise UsageError(str(error)) from None
    home = find_home(args.home, env).resolve()
    context = load_context(home)
    url = remote_url(context.api, ns, args.name, subdir)
    print(url, flush=True)
    try:
        setup = set_up_remote(
            url,
            api=context.api,
            helper=helper_command(sys.executable, home),
            cwd=Path.cwd(),
            env=env,
            remote=args.remote,
        )
    except RemoteError as error:
        raise CliError(str(error)) from None
    if setup.work_tree is None:
        print(
            "not inside a git work tree: run this again in the function's repository, or "
            f"`git remote add {args.remote} {url}`",
            file=sys.stderr,
        )
    else:
        done = "added" if setup.added else "updated"
        print(
            f"remote {args.remote!r} {done} in {setup.work_tree}; deploy with "
            f"`git push {args.remote} main`",
            file=sys.stderr,
        )
    return 0
