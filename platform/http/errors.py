"""What can go wrong talking to an upstream: every failure is an ``UpstreamError``.

The subclass says what the caller may do next: a ``ConnectError`` sent nothing and is
always safe to retry elsewhere; the others may have reached the upstream.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """The upstream did not give a complete, well-formed response."""


class ConnectError(UpstreamError):
    """No connection could be made; nothing was sent, so a retry is always safe."""


class ResetError(UpstreamError):
    """The connection was closed or reset before the response was complete."""


class UpstreamTimeout(UpstreamError):
    """No complete response arrived within the request's timeout."""


class ProtocolError(UpstreamError):
    """The upstream sent something that is not valid HTTP/1.1 (or too large a body)."""
