"""A warm, unspecialized runtime: started ahead of need, given its function later.

    python -m fnmesh.functions.pool --ready-fd N

The process imports the runtime (the HTTP server, the event loop, the SDK), writes
``warm`` to the ready pipe and blocks reading one JSON line from stdin: the function to
become -- ``{"source", "handler", "sites", "env", "concurrency", "host", "port",
"drainTimeout", "socket", "sandbox"}``. It then sets the environment and working
directory, loads the handler and serves exactly like ``python -m fnmesh.functions``,
writing ``ready <port>`` to the same pipe. A cold start therefore costs the user's
import and a bind, not an interpreter start (the way Fission specializes pooled pods).

With ``socket`` (a host path) it listens there, on a Unix socket only the platform can
open (mode 0600, created before anything of the function runs), instead of a TCP port,
and announces ``ready 0``. With ``sandbox`` (a ``fnmesh.platform.sandbox.layout.Layout``
as JSON) it first enters the sandbox: the function runs as its own uid, in namespaces of
its own, seeing only its artifact, dependencies, secrets and scratch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httptools  # noqa: F401 - imported ahead of need: that is the point of a warm process

from fnmesh.functions import main as runtime
from fnmesh.functions.app import load
from fnmesh.platform.sandbox.enter import enter
from fnmesh.platform.sandbox.layout import BASE_ENV, CODE, DEPS, Layout
from fnmesh.platform.sandbox.syscalls import die_with_parent

with contextlib.suppress(ImportError):  # imported ahead of need, like the line above
    import uvloop  # noqa: F401

EXIT_SPEC = 2


def specialize(spec: dict[str, Any], ready_fd: int) -> int:
    """Become the function ``spec`` names and serve it; the exit status of ``main``."""
    listen_fd = _listen(str(spec["socket"])) if spec.get("socket") else None
    source = Path(spec["source"])
    sites = tuple(Path(s) for s in spec.get("sites") or ())
    if spec.get("sandbox"):
        layout = Layout.from_json(spec["sandbox"])
        sys.stdin.close()
        keep = (ready_fd,) + ((listen_fd,) if listen_fd is not None else ())
        enter(layout, keep)  # returns in the sandbox, as the function's uid
        source = Path(CODE)
        sites = tuple(Path(f"{DEPS}/{n}") for n in range(len(sites)))
        os.environ.update(BASE_ENV)
    env = spec.get("env") or {}
    os.environ.update({str(k): str(v) for k, v in env.items()})
    os.chdir(source)
    options = runtime.Options(
        source=source,
        handler=str(spec["handler"]),
        sites=sites,
        host=str(spec.get("host", "127.0.0.1")),
        port=int(spec.get("port", 0)),
        ready_fd=ready_fd,
        concurrency=int(spec.get("concurrency", 0)),
        drain_timeout=float(spec.get("drainTimeout", 30.0)),
        listen_fd=listen_fd,
    )
    try:
        app = load(options.source, options.handler, options.sites)
        app.stuck_after = float(spec.get("stuckAfter", 0.0))
    except (Exception, SystemExit):
        traceback.print_exc()
        print(f"fnmesh: could not load handler {options.handler!r}", file=sys.stderr)
        return runtime.EXIT_IMPORT
    return runtime.run(app, options)


def _listen(path: str) -> int:
    """A listening Unix socket at ``path`` that only the platform (root) can connect to."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(1024)
    return sock.detach()


def main(argv: Sequence[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m fnmesh.functions.pool")
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.write(args.ready_fd, b"warm\n")
    line = sys.stdin.readline()
    if not line:
        return 0  # the supervisor let the pool go without using this process
    try:
        spec = json.loads(line)
        if not isinstance(spec, dict) or "source" not in spec or "handler" not in spec:
            raise ValueError("needs at least 'source' and 'handler'")
    except ValueError as error:
        print(f"fnmesh: bad specialization message: {error}", file=sys.stderr)
        return EXIT_SPEC
    return specialize(spec, args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
