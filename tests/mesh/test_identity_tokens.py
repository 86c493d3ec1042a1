"""One-time bootstrap tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from identitykit import GATEWAY, HELLO

from fnmesh.platform.mesh.identity import IdentityRefused, OneTimeTokenVerifier, TokenIssuer

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_token_redeems_once_for_its_identity() -> None:
    tokens = TokenIssuer()
    token = tokens.mint(HELLO, NOW)
    assert len(tokens) == 1
    assert tokens.redeem(token, NOW + timedelta(seconds=1)) == HELLO
    assert len(tokens) == 0
    with pytest.raises(IdentityRefused, match="already used"):
        tokens.redeem(token, NOW + timedelta(seconds=2))


def test_tokens_are_distinct() -> None:
    tokens = TokenIssuer()
    assert len({tokens.mint(HELLO, NOW) for _ in range(50)}) == 50


def test_unknown_token_is_refused() -> None:
    tokens = TokenIssuer()
    tokens.mint(HELLO, NOW)
    with pytest.raises(IdentityRefused, match="unknown token"):
        tokens.redeem("fnmt_made-up", NOW)


def test_expired_token_is_refused() -> None:
    tokens = TokenIssuer()
    token = tokens.mint(HELLO, NOW, timedelta(minutes=1))
    with pytest.raises(IdentityRefused, match="expired"):
        tokens.redeem(token, NOW + timedelta(minutes=1))
    assert len(tokens) == 0


def test_token_for_another_identity_is_refused_and_stays_usable() -> None:
    tokens = TokenIssuer()
    token = tokens.mint(HELLO, NOW)
    with pytest.raises(IdentityRefused, match=f"token is for '{HELLO}', not '{GATEWAY}'"):
        tokens.redeem(token, NOW, identity=GATEWAY)
    assert tokens.redeem(token, NOW, identity=HELLO) == HELLO


def test_minting_forgets_expired_tokens() -> None:
    tokens = TokenIssuer()
    tokens.mint(HELLO, NOW, timedelta(seconds=10))
    tokens.mint(HELLO, NOW + timedelta(seconds=20))
    assert len(tokens) == 1


def test_token_table_holds_no_usable_token() -> None:
    tokens = TokenIssuer()
    token = tokens.mint(HELLO, NOW)
    assert token not in repr(vars(tokens))


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        TokenIssuer().mint(HELLO, NOW, timedelta(0))


async def test_verifier_redeems_with_its_clock() -> None:
    tokens = TokenIssuer()
    now = NOW
    verifier = OneTimeTokenVerifier(tokens, clock=lambda: now)
    token = tokens.mint(HELLO, NOW, timedelta(minutes=1))
    with pytest.raises(IdentityRefused, match="not"):
        await verifier.verify(token, GATEWAY)
    await verifier.verify(token, HELLO)
    with pytest.raises(IdentityRefused, match="already used"):
        await verifier.verify(token, HELLO)
    late = tokens.mint(HELLO, NOW, timedelta(minutes=1))
    now = NOW + timedelta(minutes=2)
    with pytest.raises(IdentityRefused, match="expired"):
        await verifier.verify(late, HELLO)
