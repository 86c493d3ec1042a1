"""``fn invoke NAME``: one request to a function through the gateway; prints the body."""

from __future__ import annotations

import argparse
import http.client
import sys
from collections.abc import Mapping
from pathlib import Path

from fnmesh.platform.cli.arguments import add_home, add_namespace, namespace
from fnmesh.platform.cli.client import send
from fnmesh.platform.cli.context import find_home, load_context, with_token
from fnmesh.platform.cli.errors import CliError, UsageError
from fnmesh.platform.cli.views import invocation_url

TIMEOUT = 120.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="call a function through the gateway",
        description="Send one request to a function through the gateway and print the answer.",
    )
    parser.add_argument("name", metavar="NAME")
    add_home(parser)
    add_namespace(parser)
    body = parser.add_mutually_exclusive_group()
    body.add_argument(
        "-d", "--data", metavar="DATA", help="request body; @FILE reads a file, @- stdin"
    )
    body.add_argument("--data-file", metavar="FILE", help="read the request body from FILE")
    parser.add_argument(
        "-X", "--method", metavar="M", help="HTTP method (default: POST with data, else GET)"
    )
    parser.add_argument("--path", default="/", metavar="/x", help="path below the function")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'K: V'",
        help="request header (repeatable)",
    )
    parser.add_argument(
        "-i", "--include", action="store_true", help="print the status line and headers too"
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="send the API token ($FNMESH_TOKEN, else the context's) to call a private "
        "function; a public function would receive it, so send it only to private ones",
    )
    parser.set_defaults(run=run)


def read_file(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the request body from {name}: {error.strerror}") from None


def body_of(args: argparse.Namespace) -> bytes | None:
    if args.data_file is not None:
        return read_file(args.data_file)
    if args.data is None:
        return None
    if args.data.startswith("@"):
        return read_file(args.data[1:])
    return str(args.data).encode()


def parse_headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        key, colon, content = value.partition(":")
        if not colon or not key.strip() or any(c.isspace() for c in key.strip()):
            raise UsageError(f"-H {value!r} is not a header: write it as 'Name: value'")
        headers[key.strip()] = content.strip()
    return headers


def target(gateway: str, name: str, ns: str, path: str) -> str:
    return invocation_url(gateway, name, ns) + path.lstrip("/")


def head(response: http.client.HTTPResponse) -> str:
    version = "HTTP/1.0" if response.version == 10 else "HTTP/1.1"
    lines = [f"{version} {response.status} {response.reason}"]
    lines += [f"{key}: {value}" for key, value in response.getheaders()]
    return "\n".join(lines) + "\n\n"


def write_body(body: bytes) -> None:
    sys.stdout.flush()
    raw = getattr(sys.stdout, "buffer", None)
    if raw is not None:
        raw.write(body)
        raw.flush()
    else:
        sys.stdout.write(body.decode("utf-8", errors="replace"))
    if body and not body.endswith(b"\n") and sys.stdout.isatty():
        sys.stdout.write("\n")


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    context = with_token(load_context(find_home(args.home, env)), env)
    body = body_of(args)
    headers = parse_headers(args.header)
    if args.auth:
        headers["Authorization"] = f"Bearer {context.token}"
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    url = target(context.gateway, args.name, namespace(args), args.path)
    with send(
        method, url, body=body, headers=headers, timeout=TIMEOUT, what="the gateway"
    ) as response:
        try:
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise CliError(f"the gateway broke off the answer from {url}: {error!r}") from None
        if args.include:
            sys.stdout.write(head(response))
        write_body(answer)
        if 200 <= response.status < 300:
            return 0
        if not args.include:
            print(f"{method} {url}: {response.status} {response.reason}", file=sys.stderr)
        return 1
