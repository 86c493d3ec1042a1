"""The pure decisions: the role table, lifetimes, validity, the gateway's refusal, tap."""

from __future__ import annotations

import pytest

from fnmesh.platform.gateway.private import refusal
from fnmesh.platform.model.access import (
    PERMISSIONS,
    Grant,
    decide,
    parse_lifetime,
    redact_tap,
    required_role,
    sees_tap_whole,
    validity,
)


@pytest.mark.parametrize(
    ("role", "resource", "verb", "allowed"),
    [
        ("admin", "tokens", "write", True),
        ("deployer", "functions", "write", True),
        ("deployer", "secrets", "write", True),
        ("deployer", "traffic", "write", True),
        ("deployer", "tokens", "read", False),
        ("viewer", "functions", "read", True),
        ("viewer", "logs", "read", True),
        ("viewer", "tap", "read", True),
        ("viewer", "functions", "write", False),
        ("viewer", "source", "read", False),  # cloning code is a deployer's
        ("viewer", "secrets", "read", False),
        ("viewer", "invoke", "write", False),
        ("invoker", "invoke", "write", True),
        ("invoker", "functions", "read", False),
    ],
)
def test_the_role_table(role: str, resource: str, verb: str, allowed: bool) -> None:
    grant = Grant("t", role)  # type: ignore[arg-type]
    assert (decide(grant, resource, verb, "default") is None) is allowed  # type: ignore[arg-type]


def test_no_role_reads_secret_values_and_the_least_role_is_named() -> None:
    assert all(("secrets", "values") not in table for table in PERMISSIONS.values())
    assert required_role("secrets", "write") == "deployer"
    assert required_role("functions", "read") == "viewer"
    assert required_role("invoke", "write") == "invoker"
    assert required_role("tokens", "read") == "admin"


def test_a_scoped_grant_keeps_to_its_namespace() -> None:
    grant = Grant("t", "deployer", namespace="a")
    assert decide(grant, "functions", "write", "a") is None
    denial = decide(grant, "functions", "write", "b")
    assert denial is not None and "limited to namespace 'a'" in denial.message
    assert decide(grant, "metrics", "read", None) is not None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 14 * 86400)],
)
def test_lifetimes(text: str, seconds: int) -> None:
    assert parse_lifetime(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "30", "1y", "-1h", "99999w", 30])
def test_bad_lifetimes(text: object) -> None:
    assert parse_lifetime(text) is None


def test_validity_at_the_expiry_and_after_a_revocation() -> None:
    grant = Grant("t", "viewer", expires_at=100.0)
    assert validity(grant, 99.9) is None
    assert "expired" in str(validity(grant, 100.0))
    assert "revoked" in str(validity(Grant("t", "viewer", revoked="2026-01-01T00:00:00Z"), 0))


def test_the_gateway_refuses_without_a_token_or_with_one_that_may_not_invoke() -> None:
    assert refusal(None, "default", "vault")[0] == 401  # type: ignore[index]
    refused = refusal("the token 't' expired", "default", "vault")
    assert refused is not None and refused[0] == 401 and "expired" in refused[1]
    refused = refusal(Grant("t", "viewer"), "default", "vault")
    assert refused is not None and refused[0] == 403 and "'invoker'" in refused[1]
    assert refusal(Grant("t", "invoker", namespace="default"), "default", "vault") is None
    assert refusal(Grant("t", "invoker", namespace="other"), "default", "vault") is not None


def test_a_viewer_sees_tap_events_without_payloads_headers_or_queries() -> None:
    event = {
        "type": "request-init",
        "path": "/pay?card=4111",
        "method": "POST",
        "headers": {"authorization": "Bearer x"},
        "body": "secret",
        "status": 200,
    }
    assert redact_tap(event) == {
        "type": "request-init",
        "path": "/pay",
        "method": "POST",
        "status": 200,
    }
    assert not sees_tap_whole(Grant("t", "viewer"))
    assert sees_tap_whole(Grant("t", "deployer"))
