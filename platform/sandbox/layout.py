"""What a replica's sandbox shows, decided purely from where things are on the host.

A sandbox is a fresh root on a small tmpfs holding only:

========================  ===================================================  ======
path in the sandbox       what                                                 access
========================  ===================================================  ======
/usr /bin /lib* /etc ...  the system's runtime files                           ro
<python prefixes>         the interpreter, its standard library, site-packages ro
<fnmesh code>             the runtime's own code, at the same paths            ro
/srv/fn/code              the function's artifact                              ro
/srv/fn/deps/<n>          its dependency environments                          ro
/run/fnmesh               the replica's socket folder (its proxy's egress)     ro
/var/run/secrets/fnmesh   the function's secrets, one file per key             ro
/tmp                      a private scratch (size-limited tmpfs)               rw
/proc /dev                its own processes; null, zero, random, urandom       --
========================  ===================================================  ======

The platform home is never bound; where a bound folder would contain it, an empty
read-only tmpfs hides it. ``Layout`` travels as JSON from the platform to the warm
runtime process that builds it (``enter.py``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

CODE = "/srv/fn/code"
DEPS = "/srv/fn/deps"
SOCKETS = "/run/fnmesh"
SECRETS = "/var/run/secrets/fnmesh"
SCRATCH = "/tmp"
EGRESS_SOCKET = f"{SOCKETS}/egress.sock"
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEFAULT_SCRATCH_BYTES = 64 * 1024 * 1024
# what a sandboxed process finds in its environment besides the function's own variables
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": SCRATCH,
    "TMPDIR": SCRATCH,
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass(frozen=True, slots=True)
class Bind:
    source: str  # a host path
    target: str  # where it shows in the sandbox
    read_only: bool = True


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything the warm process needs to build one replica's sandbox."""

    uid: int
    gid: int
    hostname: str
    root: str  # an empty host folder: the new root's tmpfs is mounted on it
    binds: tuple[Bind, ...]
    masks: tuple[str, ...] = ()  # sandbox paths hidden under an empty tmpfs
    symlinks: tuple[tuple[str, str], ...] = ()  # (path, points to), e.g. merged /usr
    scratch_bytes: int = DEFAULT_SCRATCH_BYTES
    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "gid": self.gid,
            "hostname": self.hostname,
            "root": self.root,
            "binds": [[b.source, b.target, b.read_only] for b in self.binds],
            "masks": list(self.masks),
            "symlinks": [list(s) for s in self.symlinks],
            "scratchBytes": self.scratch_bytes,
            "secrets": {
                name: {key: base64.b64encode(value).decode() for key, value in keys.items()}
                for name, keys in self.secrets.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layout:
        return cls(
            uid=int(data["uid"]),
            gid=int(data["gid"]),
            hostname=str(data["hostname"]),
            root=str(data["root"]),
            binds=tuple(Bind(str(s), str(t), bool(ro)) for s, t, ro in data["binds"]),
            masks=tuple(str(m) for m in data.get("masks", ())),
            symlinks=tuple((str(p), str(t)) for p, t in data.get("symlinks", ())),
            scratch_bytes=int(data.get("scratchBytes", DEFAULT_SCRATCH_BYTES)),
            secrets={
                str(name): {str(k): base64.b64decode(v) for k, v in keys.items()}
                for name, keys in (data.get("secrets") or {}).items()
            },
        )


@dataclass(frozen=True, slots=True)
class Host:
    """What the host looks like where the layout depends on it (read by the driver)."""

    system: Mapping[str, str | None]  # system folder -> its symlink target (None: a folder)
    runtime: tuple[str, ...]  # the interpreter's prefixes and the runtime's code folders
    home: str  # the platform home: never visible


def _inside(path: str, folder: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(folder))


def _outermost(paths: Iterable[str]) -> tuple[str, ...]:
    """Drop paths inside another one of the set (a bind of the outer one shows them)."""
    unique = sorted(set(paths), key=lambda p: (len(PurePosixPath(p).parts), p))
    kept: list[str] = []
    for path in unique:
        if not any(_inside(path, outer) for outer in kept):
            kept.append(path)
    return tuple(kept)


def plan(
    host: Host,
    *,
    uid: int,
    gid: int,
    hostname: str,
    root: str,
    source: str,
    sites: Iterable[str],
    sockets: str,
    scratch_bytes: int = DEFAULT_SCRATCH_BYTES,
    secrets: Mapping[str, Mapping[str, bytes]] | None = None,
) -> Layout:
    """The sandbox of one replica: see the module docstring for what it holds."""
    binds: list[Bind] = []
    symlinks: list[tuple[str, str]] = []
    for folder, link in host.system.items():
        if link is None:
            binds.append(Bind(folder, folder))
        else:
            symlinks.append((folder, link))
    system = [b.target for b in binds]
    runtime = [p for p in _outermost(host.runtime) if not any(_inside(p, s) for s in system)]
    binds += [Bind(path, path) for path in runtime]
    binds.append(Bind(source, CODE))
    binds += [Bind(site, f"{DEPS}/{n}") for n, site in enumerate(sites)]
    binds.append(Bind(sockets, SOCKETS))
    masks = tuple(
        b.target + host.home[len(b.source) :] for b in binds if _inside(host.home, b.source)
    )
    return Layout(
        uid=uid,
        gid=gid,
        hostname=hostname,
        root=root,
        binds=tuple(binds),
        masks=masks,
        symlinks=tuple(symlinks),
        scratch_bytes=scratch_bytes,
        secrets=dict(secrets or {}),
    )
