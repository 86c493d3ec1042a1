"""The last layer: the request goes to the function runtime over a pooled loopback connection.

The caller's verified identity travels to the function in the ``fnmesh-client-id`` header
(any value the caller sent under that name is dropped first, so it cannot be forged).
Upstream failures become answers with a reason: 502 when the runtime cannot be reached
or breaks the connection, 504 when it does not answer in time.
"""

from __future__ import annotations

from fnmesh.platform.http import (
    ConnectError,
    ConnectionPool,
    Peer,
    Request,
    Response,
    UpstreamError,
    UpstreamTimeout,
    json_error,
)

CLIENT_ID_HEADER = b"fnmesh-client-id"


class Forward:
    def __init__(
        self,
        pool: ConnectionPool,
        host: str,
        port: int,
        *,
        timeout: float,
        max_body_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self._where = f"{host}:{port}"
        self._identities: dict[str, tuple[bytes, bytes]] = {}

    async def __call__(self, request: Request, peer: Peer) -> Response:
        headers = request.headers
        for name, _ in headers:
            if name == CLIENT_ID_HEADER:
                request.headers = headers = [h for h in headers if h[0] != CLIENT_ID_HEADER]
                break
        identity = peer.identity
        if identity is not None:
            header = self._identities.get(identity)
            if header is None:
                header = self._identities[identity] = (CLIENT_ID_HEADER, identity.encode())
            headers.append(header)
        try:
            return await self.pool.request(
                self.host,
                self.port,
                request,
                timeout=self.timeout,
                max_body_bytes=self.max_body_bytes,
            )
        except ConnectError as error:
            return json_error(502, f"the function runtime at {self._where} is unreachable: {error}")
        except UpstreamTimeout:
            return json_error(504, f"the function did not answer within {self.timeout:g}s")
        except UpstreamError as error:
            return json_error(502, f"the function runtime at {self._where} failed: {error}")
