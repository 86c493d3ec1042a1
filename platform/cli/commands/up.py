"""``fn up``: start the embedded platform in this process, or (``--backend kubernetes``) the
API of a cluster's platform, its resources in the kubeconfig's cluster."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from fnmesh.platform.cli.arguments import add_home
from fnmesh.platform.cli.context import find_home
from fnmesh.platform.cli.options import BACKENDS, UpOptions


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start the platform on this machine",
        description="Start the whole platform in this process; stop it with Ctrl-C.",
    )
    add_home(parser)
    parser.add_argument("--gateway-port", type=port, metavar="N", help="gateway port (0: any)")
    parser.add_argument("--api-port", type=port, metavar="N", help="API port (0: any)")
    parser.add_argument("--host", metavar="H", help="address to listen on (e.g. 127.0.0.1)")
    parser.add_argument("--example", metavar="NAME", help="deploy this example once up")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="embedded",
        help="embedded: the whole platform here (default); kubernetes: only the API here, "
        "keeping resources in the cluster of the current kubeconfig context",
    )
    parser.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run replicas unconfined, as the platform's own user (function code can then "
        "read the platform's keys and tokens): only for hosts without namespaces",
    )
    parser.set_defaults(run=run)


def port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port: use a number from 0 to 65535")
    return int(value)


def options(args: argparse.Namespace, env: Mapping[str, str]) -> UpOptions:
    return UpOptions(
        home=find_home(args.home, env),
        api_port=args.api_port,
        gateway_port=args.gateway_port,
        host=args.host,
        example=args.example,
        backend=args.backend,
        unsafe_no_sandbox=args.unsafe_no_sandbox,
    )


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    chosen = options(args, env)
    if chosen.backend == "kubernetes":
        from fnmesh.platform.cluster.local import run_up

        return run_up(chosen)
    from fnmesh.platform.embedded.main import run as run_platform

    return run_platform(chosen)
