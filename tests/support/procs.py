"""Processes and sockets of this host, read from /proc: who started whom, who listens."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int] | list[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def with_marker(marker: str) -> list[int]:
    """Processes whose command line contains ``marker``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


def _listening() -> dict[int, set[str]]:
    """TCP port -> inodes of the sockets listening on it (IPv4 and IPv6)."""
    ports: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.setdefault(int(fields[1].rsplit(":", 1)[1], 16), set()).add(fields[9])
    return ports


def listening_ports() -> list[int]:
    """Every TCP port something listens on here."""
    return sorted(_listening())


def listener_pid(port: int) -> int:
    """The process holding the socket that listens on ``port``."""
    links = {f"socket:[{inode}]" for inode in _listening().get(port, ())}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") in links:
                    return int(entry)
            except OSError:
                continue
    raise AssertionError(f"no process listens on port {port}")


def proxy_of(replica: dict[str, object]) -> int:
    """A replica's proxy: the process serving its admin port (the replica's metrics URL)."""
    return listener_pid(int(str(replica["metricsUrl"]).rsplit(":", 1)[1].split("/")[0]))
