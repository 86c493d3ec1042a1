"""Reads what the sandbox layout depends on from this host, and whether sandboxes work."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from fnmesh.platform.sandbox.layout import SYSTEM, Host

_PROBE = (
    "from fnmesh.platform.sandbox import syscalls as sc\n"
    "sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWNET | sc.CLONE_NEWIPC)\n"
    "sc.make_private('/')\n"
)


def read_host(home: Path, packages: Iterable[str]) -> Host:
    """The system folders (and which are symlinks), the interpreter's prefixes and the
    folders holding ``packages`` (the runtime's own code), and the home to keep out."""
    system: dict[str, str | None] = {}
    for folder in SYSTEM:
        if os.path.islink(folder):
            system[folder] = os.readlink(folder)
        elif os.path.isdir(folder):
            system[folder] = None
    prefixes = (sys.base_prefix, sys.prefix, sys.exec_prefix)
    runtime = {os.path.realpath(p) for p in prefixes} | set(prefixes)
    for name in packages:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            if os.path.isdir(location):  # not an import hook's placeholder entry
                runtime.add(os.path.realpath(location))
    return Host(system=system, runtime=tuple(sorted(runtime)), home=str(home.resolve()))


def unavailable() -> str | None:
    """Why replicas cannot be sandboxed on this host (None: they can)."""
    if sys.platform != "linux":
        return f"sandboxes need Linux namespaces; this is {sys.platform}"
    if os.geteuid() != 0:
        return "sandboxes need root (mount, PID and network namespaces, per-function uids)"
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines()
        return f"creating namespaces failed: {lines[-1] if lines else probe.returncode}"
    return None
