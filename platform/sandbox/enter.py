"""Enter a sandbox from a warm runtime process (the driver of ``layout``).

Run as root (or with CAP_SYS_ADMIN) by the trusted runtime code, before any of the
function's code is imported. Three processes come out of it:

    shim (host PID namespace; the process the platform started and waits on)
      `- init (PID 1 of a new PID namespace: reaps orphans, forwards SIGTERM/SIGINT)
           `- runtime (PID 2: returns from ``enter`` and serves the function)

The shim and init stay small loops and never return. Each process is killed with SIGKILL
when its parent dies, and when init dies the kernel kills everything in its PID namespace,
so no descendant of a handler outlives its replica. Exit statuses travel up unchanged;
a death by signal N comes out as a death by the same signal of the shim.

Init builds the mount, network, IPC and UTS namespaces and the new root, then drops to
the function's uid and gid (no supplementary groups, no capabilities, no_new_privs)
before the runtime is forked, so nothing in the sandbox runs as root.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

from fnmesh.platform.sandbox import syscalls as sc
from fnmesh.platform.sandbox.layout import DEVICES, SCRATCH, SECRETS, Layout

EXIT_SANDBOX = 6  # the sandbox could not be built
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def enter(layout: Layout, keep_fds: tuple[int, ...]) -> None:
    """Return in the sandboxed runtime process; the shim and init never return."""
    sc.unshare(sc.CLONE_NEWPID)
    child = os.fork()
    if child:
        _shim(child)
    try:
        _build(layout)
        _close_fds_except((0, 1, 2, *keep_fds))
        _drop_privileges(layout)
    except Exception as error:
        print(f"fnmesh: cannot build the sandbox: {error}", file=sys.stderr, flush=True)
        os._exit(EXIT_SANDBOX)
    runtime = os.fork()
    if runtime:
        _init(runtime)
    sc.die_with_parent()
    os.environ.clear()


def _wait_forwarding(child: int, reap_all: bool) -> int:
    """Forward termination signals to ``child`` and wait for it; its wait status."""

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.waitpid(-1 if reap_all else child, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child:
            return status


def _shim(child: int) -> None:
    status = _wait_forwarding(child, reap_all=False)
    code = os.waitstatus_to_exitcode(status)
    if code > 128 or code < 0:  # init reports a signal death as 128 + N
        signum = -code if code < 0 else code - 128
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
    os._exit(code if 0 <= code < 256 else 1)


def _init(runtime: int) -> None:
    status = _wait_forwarding(runtime, reap_all=True)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _build(layout: Layout) -> None:
    sc.die_with_parent()
    sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS)
    sc.make_private("/")
    root = layout.root
    sc.mount("tmpfs", root, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=4m,mode=755")
    # the scratch first: binds below /tmp (a runtime installed there) go on top of it
    os.makedirs(root + SCRATCH, exist_ok=True)
    options = f"size={layout.scratch_bytes},mode=1777"
    sc.mount("tmpfs", root + SCRATCH, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, options)
    for bind in layout.binds:
        target = root + bind.target
        if Path(bind.source).is_dir():
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            Path(target).touch()
        sc.bind(bind.source, target, read_only=bind.read_only)
    for path, points_to in layout.symlinks:
        os.symlink(points_to, root + path)
    for mask in layout.masks:
        if os.path.isdir(root + mask):
            sc.mount("tmpfs", root + mask, "tmpfs", sc.MS_RDONLY, "size=4k,mode=000")
    _devices(root)
    os.makedirs(root + "/proc", exist_ok=True)
    sc.mount("proc", root + "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    _secrets(root, layout)
    os.makedirs(root + "/.old", exist_ok=True)
    sc.pivot_root(root, root + "/.old")
    os.chdir("/")
    sc.umount("/.old")
    os.rmdir("/.old")
    sc.mount(None, "/", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID)
    sc.sethostname(layout.hostname)
    sc.loopback_up()


def _devices(root: str) -> None:
    dev = root + "/dev"
    os.makedirs(dev, exist_ok=True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, "size=64k,mode=755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            Path(f"{dev}/{name}").touch()
            sc.bind(f"/dev/{name}", f"{dev}/{name}", read_only=False)
            # nodev on the bind would make the node useless: remount it with devices on
            sc.mount(None, f"{dev}/{name}", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_NOSUID)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(dev + "/shm", mode=0o1777)
    sc.mount("tmpfs", dev + "/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=16m,mode=1777")


def _secrets(root: str, layout: Layout) -> None:
    if not layout.secrets:
        return
    folder = root + SECRETS
    os.makedirs(folder, exist_ok=True)
    sc.mount("tmpfs", folder, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755")
    for name, keys in layout.secrets.items():
        os.makedirs(f"{folder}/{name}", mode=0o755)
        for key, value in keys.items():
            path = f"{folder}/{name}/{key}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            try:
                os.write(fd, value)
            finally:
                os.close(fd)
            os.chown(path, layout.uid, layout.gid)
    flags = sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    sc.mount(None, folder, None, flags)


def _close_fds_except(keep: tuple[int, ...]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _drop_privileges(layout: Layout) -> None:
    os.setgroups([])
    os.setresgid(layout.gid, layout.gid, layout.gid)
    os.setresuid(layout.uid, layout.uid, layout.uid)
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    sc.die_with_parent()  # a change of credentials cleared it
    if os.getuid() == 0 or os.geteuid() == 0:
        raise OSError(1, "still root after dropping privileges")
