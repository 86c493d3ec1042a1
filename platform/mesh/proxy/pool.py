"""A warm, unspecialized replica proxy: started ahead of need, configured later.

    python -m fnmesh.platform.mesh.proxy.pool --ready-fd N

The process imports the proxy (TLS, the HTTP layer, metrics, identity), writes ``warm``
to the ready pipe and blocks reading one JSON line from stdin: ``{"env": {...}}`` with
the ``FNMESH_PROXY_*`` settings of the replica it is to serve. It then runs exactly like
``python -m fnmesh.platform.mesh.proxy`` and writes ``ready <inbound> <admin>`` to the same
pipe, so a cold start does not pay for an interpreter start and the proxy's imports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence

from fnmesh.platform.mesh.proxy import main as proxy
from fnmesh.platform.sandbox.syscalls import die_with_parent

with contextlib.suppress(ImportError):  # imported ahead of need, like the proxy itself
    import uvloop  # noqa: F401

EXIT_SPEC = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fnmesh.platform.mesh.proxy.pool")
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    die_with_parent()  # a proxy never outlives the platform that started it
    os.write(args.ready_fd, b"warm\n")
    line = sys.stdin.readline()
    if not line:
        return 0  # the supervisor let the pool go without using this process
    try:
        message = json.loads(line)
        env = message["env"]
        if not isinstance(env, dict):
            raise ValueError("'env' must be an object")
    except (ValueError, KeyError, TypeError) as error:
        print(f"fnmesh-proxy: bad specialization message: {error}", file=sys.stderr)
        return EXIT_SPEC
    os.environ.update({str(k): str(v) for k, v in env.items()})
    return proxy.main(["--ready-fd", str(args.ready_fd)])


if __name__ == "__main__":
    sys.exit(main())
