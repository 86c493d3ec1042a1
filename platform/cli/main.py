"""``fn``: parse the command line, run one command, turn expected failures into exit codes.

Exit codes: 0 ok, 1 failure, 2 bad usage or input. Expected failures (``CliError``) print
their message, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fnmesh.platform.cli.commands import (
    build_log,
    delete,
    deploy,
    describe,
    git_credential,
    git_remote,
    init,
    invoke,
    listing,
    logs,
    revisions,
    rollback,
    rollout,
    secret,
    stat,
    tap,
    token,
    traffic,
    up,
)
from fnmesh.platform.cli.errors import USAGE, CliError

COMMANDS = (
    up,
    init,
    deploy,
    invoke,
    listing,
    describe,
    revisions,
    traffic,
    rollout,
    rollback,
    logs,
    stat,
    tap,
    build_log,
    delete,
    secret,
    git_remote,
    git_credential,
    token,
)
INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fn",
        description="Deploy, call and inspect Python functions on fnmesh.",
        epilog="Start with `fn up`, then `fn init hello && cd hello && fn deploy`.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or a usage error argparse has already printed
        return _exit_code(exit.code)
    try:
        return int(args.run(args, os.environ))
    except CliError as error:
        sys.stdout.flush()
        print(f"error: {error.message}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # the reader went away (e.g. `fn list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
