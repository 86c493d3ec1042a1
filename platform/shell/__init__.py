"""What every entry point shares: the shell a process's components are wired into.

``fn up`` (embedded and ``--backend kubernetes``) and each component of the chart
(``python -m fnmesh.platform.cluster.<name>``) differ only in what they wire; the shell
does the rest, the same way for all of them:

- configuration is loaded once, before anything starts; every problem is reported with
  its field path and the process exits 2 (``process.run``);
- logging (``FNMESH_LOG_LEVEL``), the uvloop event loop, SIGINT/SIGTERM as a stop event;
- the home's lock (``home``), the admin token and the CLI's context file (``context``);
- listeners bound before their server starts, port 0 allowed (``listeners``), and the
  ASGI servers of the control plane on them (``asgi``);
- shutdown in steps (``stops``): each component registers how it stops as it starts, and
  the steps run last-started first, every one even when one fails -- also when the start
  itself failed half way.

Exit status of every entry point: 0 after a graceful stop, 1 when it cannot start (a
port, the home's lock, the cluster, the identity endpoint), 2 for a bad configuration.

The shell sits just below the entry points: it wires nothing and imports no component.
"""

from fnmesh.platform.shell.asgi import AsgiServer
from fnmesh.platform.shell.context import admin_token, adopt_token, read_token, write_context
from fnmesh.platform.shell.home import HomeLocked, hold_home
from fnmesh.platform.shell.listeners import listen, url
from fnmesh.platform.shell.process import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_START,
    CannotStart,
    Shell,
    refuse,
    run,
)
from fnmesh.platform.shell.stops import Stops

__all__ = [
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_START",
    "AsgiServer",
    "CannotStart",
    "HomeLocked",
    "Shell",
    "Stops",
    "admin_token",
    "adopt_token",
    "hold_home",
    "listen",
    "read_token",
    "refuse",
    "run",
    "url",
    "write_context",
]
