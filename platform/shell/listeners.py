"""Listening sockets, bound before the server that uses them starts.

Binding first means a taken port stops the start before anything runs, and port 0 works
everywhere: the caller reads the port the kernel chose from the socket.
"""

from __future__ import annotations

import socket

BACKLOG = 1024


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening, non-blocking socket; OSError names the address and the fix."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {error.strerror}; choose another port "
            "(0 picks a free one)"
        ) from None
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def url(host: str, port: int, scheme: str = "http") -> str:
    """The URL of ``host:port`` (an IPv6 host in brackets)."""
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
