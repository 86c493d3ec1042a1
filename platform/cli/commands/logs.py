"""``fn logs NAME``: the output of a function's replicas; ``-f`` follows it live."""

from __future__ import annotations

import argparse
import codecs
import http.client
import sys
from collections.abc import Mapping

from fnmesh.platform.cli.arguments import add_home, add_namespace, connect, namespace
from fnmesh.platform.cli.client import namespaced, with_query

CHUNK = 64 * 1024


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="print a function's logs",
        description="Print the output of a function's replicas (stop following with Ctrl-C).",
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument(
        "--tail", type=lines, metavar="N", help="start with the last N lines (default: 100)"
    )
    parser.set_defaults(run=run)


def lines(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of lines")
    return int(value)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    client = connect(args, env)
    path = with_query(
        namespaced(namespace(args), "functions", args.name, "logs"),
        {"tail": args.tail, "follow": True if args.follow else None},
    )
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        with client.open("GET", path, timeout=None if args.follow else client.timeout) as response:
            while True:
                try:
                    chunk = response.read1(CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    raise client.lost(error) from None
                if not chunk:
                    break
                sys.stdout.write(decoder.decode(chunk))
                sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    sys.stdout.write(decoder.decode(b"", final=True))
    return 0
