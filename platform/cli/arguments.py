"""Arguments shared by several commands, and the API client they lead to."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from fnmesh.platform.cli.client import ApiClient
from fnmesh.platform.cli.context import find_home, load_context, with_token
from fnmesh.platform.cli.output import FORMATS


def add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="the platform's home folder (default: $FNMESH_HOME, else ~/.fnmesh)",
    )


def add_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", metavar="NS", help="the function's namespace (default: default)"
    )


def add_output(parser: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=formats,
        default="table",
        help="output format (default: table)",
    )


def namespace(args: argparse.Namespace) -> str:
    return str(getattr(args, "namespace", None) or "default")


def connect(args: argparse.Namespace, env: Mapping[str, str]) -> ApiClient:
    """The API client of the platform in the chosen home; CliError when there is none.
    ``$FNMESH_TOKEN``, when set, is sent instead of the context's token."""
    return ApiClient(with_token(load_context(find_home(args.home, env)), env))
