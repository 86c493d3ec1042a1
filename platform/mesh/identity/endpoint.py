"""The identity service over HTTPS: ``HttpIdentityEndpoint``.

One ``POST /v1/certify`` on the data path's own client (``fnmesh.platform.http``), with
the identity service's certificate checked for ``server_identity``. It keeps the import
set of a replica proxy small: no aiohttp.
"""

from __future__ import annotations

import json
import ssl
from urllib.parse import urlsplit

from fnmesh.platform.http import ConnectionPool, Request, UpstreamError
from fnmesh.platform.mesh.identity.errors import BadRequest, IdentityError, IdentityRefused
from fnmesh.platform.mesh.identity.names import TRUST_DOMAIN, component_identity
from fnmesh.platform.mesh.identity.wire import CERTIFY_PATH, CertifyRequest, CertifyResponse


class HttpIdentityEndpoint:
    def __init__(
        self,
        url: str,
        *,
        server_identity: str | None = None,
        trust_domain: str = TRUST_DOMAIN,
        timeout: float = 10.0,
        pool: ConnectionPool | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the identity service URL {url!r} must be https://host[:port]")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.authority = parts.netloc.encode()
        self.target = (parts.path.rstrip("/") + CERTIFY_PATH).encode()
        self.server_identity = server_identity or component_identity("identity", trust_domain)
        self.timeout = timeout
        self.pool = pool or ConnectionPool(max_idle_per_host=1, idle_timeout=5.0)

    async def certify(
        self, request: CertifyRequest, ssl_context: ssl.SSLContext
    ) -> CertifyResponse:
        message = Request(
            "POST",
            self.target,
            [(b"host", self.authority), (b"content-type", b"application/json")],
            json.dumps(request.to_json()).encode(),
        )
        try:
            response = await self.pool.request(
                self.host,
                self.port,
                message,
                timeout=self.timeout,
                ssl=ssl_context,
                server_hostname=self.server_identity,
            )
        except UpstreamError as error:
            raise IdentityError(
                f"cannot reach the identity service at {self.url}: {error or type(error).__name__}"
            ) from error
        return read_answer(response.status, response.body)

    async def close(self) -> None:
        await self.pool.close()


def read_answer(status: int, body: bytes) -> CertifyResponse:
    """The certificate, or the service's refusal as IdentityRefused / BadRequest."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if status == 200:
        try:
            return CertifyResponse.from_json(document)
        except ValueError as error:
            raise IdentityError(f"the identity service answered nonsense: {error}") from None
    reason = document.get("reason") if isinstance(document, dict) else None
    if status == 403 and isinstance(reason, str):
        raise IdentityRefused(reason)
    if status == 400 and isinstance(reason, str) and isinstance(document, dict):
        raise BadRequest(str(document.get("field", "body")), reason)
    text = body[:300].decode("utf-8", "replace")
    raise IdentityError(f"the identity service answered {status}: {text}")
