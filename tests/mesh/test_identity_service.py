"""The identity endpoint over real HTTPS: who gets a certificate, and the refusals."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from identitykit import GATEWAY, HELLO, close_writer, credentials_for, pem_to_der, real_now

from fnmesh.platform.mesh.identity import (
    AuthorityError,
    BadRequest,
    CertificateAuthority,
    Certifier,
    CertifyRequest,
    CertifyResponse,
    HttpIdentityEndpoint,
    IdentityError,
    IdentityRefused,
    OneTimeTokenVerifier,
    TokenIssuer,
    client_context,
    make_csr,
)
from fnmesh.platform.mesh.identity.service import IdentityService


@dataclass
class Platform:
    authority: CertificateAuthority
    tokens: TokenIssuer
    service: IdentityService
    endpoint: HttpIdentityEndpoint

    def anonymous(self) -> ssl.SSLContext:
        return client_context(self.authority.trust_anchors_pem)

    def as_identity(self, identity: str) -> ssl.SSLContext:
        return client_context(
            self.authority.trust_anchors_pem, credentials_for(self.authority, identity)
        )

    def token(self, identity: str) -> str:
        return self.tokens.mint(identity, real_now())

    async def post(self, body: Any) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else None
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.endpoint.url + "/v1/certify",
                data=data,
                json=None if data is not None else body,
                ssl=self.anonymous(),
                server_hostname=self.service.identity,
            ) as reply,
        ):
            return reply.status, await reply.json()


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    authority = CertificateAuthority.create(real_now())
    tokens = TokenIssuer()
    service = IdentityService(Certifier(authority, OneTimeTokenVerifier(tokens)))
    await service.start()
    try:
        yield Platform(authority, tokens, service, HttpIdentityEndpoint(service.url))
    finally:
        await service.close()


async def certify(
    platform: Platform, identity: str, credential: str, context: ssl.SSLContext | None = None
) -> CertifyResponse:
    request = CertifyRequest(identity, make_csr(identity).csr_pem, credential)
    return await platform.endpoint.certify(request, context or platform.anonymous())


async def test_token_gets_a_day_long_certificate_chaining_to_the_anchor(
    platform: Platform,
) -> None:
    before = real_now()
    response = await certify(platform, HELLO, platform.token(HELLO))
    leaf = x509.load_pem_x509_certificate(response.certificate.encode())
    issuer = x509.load_pem_x509_certificate(response.chain.encode())
    leaf.verify_directly_issued_by(issuer)
    issuer.verify_directly_issued_by(platform.authority.anchor.certificate)
    assert response.trust_anchors == platform.authority.trust_anchors_pem
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HELLO]
    assert response.expires_at == leaf.not_valid_after_utc
    lifetime = response.expires_at - before
    assert timedelta(hours=24) - timedelta(seconds=5) <= lifetime <= timedelta(hours=24, seconds=5)


async def test_csr_for_a_foreign_identity_is_refused_and_the_token_survives(
    platform: Platform,
) -> None:
    token = platform.token(HELLO)
    request = CertifyRequest(HELLO, make_csr(GATEWAY).csr_pem, token)
    status, body = await platform.post(request.to_json())
    assert status == 403
    assert body["error"] == "Forbidden"
    assert f"csr names '{GATEWAY}' but the credential is for '{HELLO}'" in body["reason"]
    await certify(platform, HELLO, token)  # the CSR was refused before the token was used


async def test_token_for_another_identity_is_refused(platform: Platform) -> None:
    with pytest.raises(IdentityRefused, match=f"token is for '{HELLO}'"):
        await certify(platform, GATEWAY, platform.token(HELLO))


async def test_reused_token_is_refused(platform: Platform) -> None:
    token = platform.token(HELLO)
    await certify(platform, HELLO, token)
    with pytest.raises(IdentityRefused, match="already used"):
        await certify(platform, HELLO, token)


async def test_no_credential_and_no_certificate_is_refused(platform: Platform) -> None:
    with pytest.raises(IdentityRefused, match="no credential"):
        await certify(platform, HELLO, "")


async def test_renewal_presents_the_current_certificate_instead_of_a_token(
    platform: Platform,
) -> None:
    response = await certify(platform, HELLO, "", platform.as_identity(HELLO))
    assert "BEGIN CERTIFICATE" in response.certificate


async def test_certificate_of_one_identity_cannot_renew_another(platform: Platform) -> None:
    with pytest.raises(IdentityRefused, match=f"certificate is for '{GATEWAY}'"):
        await certify(platform, HELLO, "", platform.as_identity(GATEWAY))


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"{not json", "body", "is not JSON"),
        ([], "body", "must be a JSON object"),
        ({"csr": "x"}, "identity", "is required"),
        ({"identity": "hello", "csr": "x"}, "identity", "not in trust domain"),
        ({"identity": HELLO}, "csr", "is required"),
        ({"identity": HELLO, "csr": 7}, "csr", "must be a string"),
        ({"identity": HELLO, "csr": "garbage"}, "csr", "not a PEM certificate request"),
        ({"identity": HELLO, "csr": "x" * 10000}, "csr", "at most"),
        ({"identity": HELLO, "csr": "x", "credential": 5}, "credential", "must be a string"),
    ],
)
async def test_malformed_requests_name_the_field(
    platform: Platform, body: Any, field: str, reason: str
) -> None:
    status, answer = await platform.post(body)
    assert status == 400
    assert answer["field"] == field
    assert reason in answer["reason"]


async def test_malformed_request_through_the_endpoint_raises_bad_request(
    platform: Platform,
) -> None:
    request = CertifyRequest(HELLO, "garbage", platform.token(HELLO))
    with pytest.raises(BadRequest) as failure:
        await platform.endpoint.certify(request, platform.anonymous())
    assert failure.value.field == "csr"


async def test_endpoint_checks_the_service_identity(platform: Platform) -> None:
    impostor = HttpIdentityEndpoint(platform.service.url, server_identity=GATEWAY)
    request = CertifyRequest(HELLO, make_csr(HELLO).csr_pem, platform.token(HELLO))
    with pytest.raises(IdentityError, match=r"(?i)hostname mismatch|certificate verify failed"):
        await impostor.certify(request, platform.anonymous())


async def test_service_renews_its_own_certificate_in_place(platform: Platform) -> None:
    context = platform.service.ssl_context()
    first = platform.service.certificate
    await platform.service.renew_own()
    assert platform.service.ssl_context() is context
    renewed = platform.service.certificate
    assert renewed is not None and renewed != first
    _, writer = await asyncio.open_connection(
        "127.0.0.1",
        platform.service.port,
        ssl=platform.anonymous(),
        server_hostname=platform.service.identity,
    )
    try:
        presented = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        await close_writer(writer)
    assert presented == pem_to_der(renewed.certificate)
    await certify(platform, HELLO, platform.token(HELLO))


async def test_unreachable_service_is_an_identity_error(platform: Platform) -> None:
    await platform.service.close()
    with pytest.raises(IdentityError, match="cannot reach the identity service"):
        await certify(platform, HELLO, platform.token(HELLO))


async def test_certifier_replaces_a_due_issuer_before_signing() -> None:
    now = real_now()
    authority = CertificateAuthority.create(now)
    tokens = TokenIssuer()
    certifier = Certifier(authority, OneTimeTokenVerifier(tokens, clock=lambda: later))
    later = authority.issuer.certificate.not_valid_after_utc - timedelta(days=1)
    request = CertifyRequest(HELLO, make_csr(HELLO).csr_pem, tokens.mint(HELLO, later))
    response = await certifier.certify(request, peer_identity=None, now=later)
    assert response.chain != authority.issuer.pem
    assert response.chain == certifier.authority.issuer.pem
    assert response.expires_at == later + timedelta(hours=24)


async def test_certifier_without_a_usable_issuer_says_so() -> None:
    now = real_now()
    full = CertificateAuthority.create(now)
    authority = replace(full, anchor=replace(full.anchor, key=None))  # anchor managed elsewhere
    certifier = Certifier(authority, OneTimeTokenVerifier(TokenIssuer()))
    after = authority.issuer.certificate.not_valid_after_utc + timedelta(seconds=1)
    request = CertifyRequest(HELLO, make_csr(HELLO).csr_pem, "")
    with pytest.raises(AuthorityError, match="issuer expired"):
        await certifier.certify(request, peer_identity=HELLO, now=after)
