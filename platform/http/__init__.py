"""The HTTP/1.1 wire layer of the data path: a fast server and a pooled upstream client.

Built the way uvicorn is: ``asyncio.Protocol`` classes fed by httptools parsers, with
buffered messages (bodies are read whole, within limits) handed to an async handler
``(Request, Peer) -> Response``. Gateway, replica proxy, activator and the function
runtime all stand on this; it imports nothing else from fnmesh.

- ``message``: Request, Response, Peer, Handler, ServerLimits (the values);
- ``wire``: bytes on the wire (heads, hop-by-hop filtering, dates) -- pure;
- ``memory``: giving freed memory back to the system after a burst of large bodies;
- ``connection`` and ``server``: the server protocol, ``serve()`` and graceful close;
- ``upstream`` and ``client``: one upstream connection and the ``ConnectionPool``;
- ``errors``: what an upstream request can fail with.
"""

from fnmesh.platform.http.client import ConnectionPool
from fnmesh.platform.http.errors import (
    ConnectError,
    ProtocolError,
    ResetError,
    UpstreamError,
    UpstreamTimeout,
)
from fnmesh.platform.http.message import Handler, Peer, Request, Response, ServerLimits
from fnmesh.platform.http.server import HttpServer, serve
from fnmesh.platform.http.wire import json_error

__all__ = [
    "ConnectError",
    "ConnectionPool",
    "Handler",
    "HttpServer",
    "Peer",
    "ProtocolError",
    "Request",
    "ResetError",
    "Response",
    "ServerLimits",
    "UpstreamError",
    "UpstreamTimeout",
    "json_error",
    "serve",
]
