"""The identity endpoint: an aiohttp app serving ``POST /v1/certify`` over TLS.

The service presents a certificate of its own, for ``identity.fnmesh-system....``, signed
by the same issuer, so workloads verify it with the trust anchor they were given. It asks
clients for a certificate but does not require one: a workload's first request carries a
bootstrap credential, its renewals present the current certificate (see ``certify``).
The service renews its own certificate like any workload, in place, so the listener
keeps serving.

Answers: 200 with the certificate, 400 ``{"error": "BadRequest", "field", "reason"}`` for
a malformed request, 403 ``{"error": "Forbidden", "reason"}`` for a refused one, 503
``{"error": "Unavailable", "reason"}`` when the issuer cannot sign (expired, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from pathlib import Path

from aiohttp import web

from fnmesh.platform.mesh.identity.certificate import IssuedCertificate
from fnmesh.platform.mesh.identity.certify import Certifier
from fnmesh.platform.mesh.identity.clock import Clock, Sleep, system_clock, system_sleep
from fnmesh.platform.mesh.identity.csr import make_csr
from fnmesh.platform.mesh.identity.errors import AuthorityError, BadRequest, IdentityRefused
from fnmesh.platform.mesh.identity.names import component_identity
from fnmesh.platform.mesh.identity.renewal import (
    DEFAULT_POLICY,
    RenewalPolicy,
    Validity,
    renew_forever,
)
from fnmesh.platform.mesh.identity.tls import (
    TlsCredentials,
    load_credentials,
    peer_identity,
    server_context,
)
from fnmesh.platform.mesh.identity.wire import CERTIFY_PATH, parse_certify_request

log = logging.getLogger("fnmesh.mesh.identity")
MAX_BODY_BYTES = 64 * 1024


def service_identity(trust_domain: str) -> str:
    return component_identity("identity", trust_domain)


def _bad_request(field: str, reason: str) -> web.Response:
    return web.json_response({"error": "BadRequest", "field": field, "reason": reason}, status=400)


class IdentityService:
    """Serves certify requests with a ``Certifier`` and keeps its own certificate fresh."""

    def __init__(
        self,
        certifier: Certifier,
        *,
        clock: Clock = system_clock,
        sleep: Sleep = system_sleep,
        policy: RenewalPolicy = DEFAULT_POLICY,
        scratch: Path | None = None,
    ) -> None:
        self.certifier = certifier
        self.clock = clock
        self.sleep = sleep
        self.policy = policy
        self.scratch = scratch
        self.identity = service_identity(certifier.authority.trust_domain)
        self._context: ssl.SSLContext | None = None
        self._certificate: IssuedCertificate | None = None
        self._runner: web.AppRunner | None = None
        self._renewals: asyncio.Task[None] | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(CERTIFY_PATH, self._certify)
        return app

    @property
    def certificate(self) -> IssuedCertificate | None:
        """The service's own current certificate."""
        return self._certificate

    def ssl_context(self) -> ssl.SSLContext:
        """The server context presenting the service's certificate (made on first use)."""
        if self._context is None:
            credentials = self._issue_own()
            self._context = server_context(
                self.certifier.authority.trust_anchors_pem,
                credentials,
                require_client_cert=False,
                scratch=self.scratch,
            )
        return self._context

    def _issue_own(self) -> TlsCredentials:
        request = make_csr(self.identity)
        self._certificate = self.certifier.issue(request.csr_pem, self.identity, self.clock())
        return TlsCredentials(self._certificate.chain_pem, request.key_pem)

    async def renew_own(self) -> None:
        """A new certificate for the service, loaded into the listening context in place."""
        load_credentials(self.ssl_context(), self._issue_own(), scratch=self.scratch)

    def _validity(self) -> Validity:
        assert self._certificate is not None
        return Validity(self._certificate.not_before, self._certificate.not_after)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0: any free port, then in ``self.port``) over TLS."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self.ssl_context())
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._renewals = asyncio.create_task(
            renew_forever(
                self._validity,
                self.renew_own,
                clock=self.clock,
                sleep=self.sleep,
                policy=self.policy,
                what="identity service certificate",
            )
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._renewals is not None:
            self._renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewals
            self._renewals = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _certify(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as error:
            return _bad_request("body", f"is not JSON ({error})")
        transport = request.transport
        peer = peer_identity(transport.get_extra_info("ssl_object") if transport else None)
        try:
            certify = parse_certify_request(body, self.certifier.authority.trust_domain)
            response = await self.certifier.certify(certify, peer_identity=peer, now=self.clock())
        except BadRequest as error:
            return _bad_request(error.field, error.reason)
        except IdentityRefused as error:
            log.info("refused a certificate for %s: %s", certify.identity, error.reason)
            return web.json_response({"error": "Forbidden", "reason": error.reason}, status=403)
        except AuthorityError as error:
            log.error("cannot certify %s: %s", certify.identity, error)
            return web.json_response({"error": "Unavailable", "reason": str(error)}, status=503)
        log.info(
            "certified %s until %s%s",
            certify.identity,
            response.expires_at.isoformat(),
            " (renewal over mTLS)" if peer == certify.identity else "",
        )
        return web.json_response(response.to_json())
