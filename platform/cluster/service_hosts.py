"""Service names resolved from a hosts file instead of the cluster's DNS.

Inside a cluster a revision's Service is ``<revision>.<namespace>.svc``, which the
cluster's DNS answers. A machine with no such DNS -- the parity tests, which run the
chart's components and a process kubelet on one host -- names a file in
``FNMESH_SERVICE_HOSTS`` instead: lines of ``address name [name...]`` as in
``/etc/hosts`` (``#`` starts a comment). A name the file lists is replaced by its address
when a component makes an endpoint of it; any other name is left to DNS. The file is
read again whenever it changes, so whoever runs the Services can add them as they come.
Unset (the chart), nothing is read and every name goes to DNS.

``parse_hosts`` is the decision (pure); ``ServiceHosts`` reads the file.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

log = logging.getLogger("fnmesh.cluster.service_hosts")


def parse_hosts(text: str) -> dict[str, str]:
    """name -> address for every well-formed line of ``text``; the first line naming a
    host wins, as in ``/etc/hosts``. Lines whose first word is no IP address are skipped."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            address = str(ipaddress.ip_address(words[0]))
        except ValueError:
            continue
        for name in words[1:]:
            found.setdefault(name.lower().rstrip("."), address)
    return found


class ServiceHosts:
    """The names ``path`` maps to addresses, read again when the file changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._names: dict[str, str] = {}

    def address(self, host: str) -> str:
        """``host``'s address from the file, else ``host`` unchanged (for DNS)."""
        if self.path is None:
            return host
        self._refresh(self.path)
        return self._names.get(host.lower().rstrip("."), host)

    def _refresh(self, path: Path) -> None:
        try:
            seen = path.stat()
        except OSError:
            self._names, self._stamp = {}, None
            return
        stamp = (seen.st_ino, seen.st_mtime_ns, seen.st_size)  # a rename is a new inode
        if stamp == self._stamp:
            return
        try:
            self._names = parse_hosts(path.read_text(errors="replace"))
        except OSError as error:
            log.warning("cannot read the service hosts file %s: %s", path, error)
            return
        self._stamp = stamp
