"""Identity names: building, parsing and refusing them."""

from __future__ import annotations

import pytest

from fnmesh.platform.mesh.identity import (
    Identity,
    check_identity,
    component_identity,
    identity_name,
    parse_identity,
)


def test_identity_of_a_service_account() -> None:
    assert identity_name("hello", "default") == "hello.default.serviceaccount.identity.fnmesh.local"
    assert identity_name("hello", "team-a", "prod.example") == (
        "hello.team-a.serviceaccount.identity.prod.example"
    )


@pytest.mark.parametrize("component", ["gateway", "activator", "autoscaler", "api", "identity"])
def test_components_live_in_the_system_namespace(component: str) -> None:
    assert component_identity(component) == (
        f"{component}.fnmesh-system.serviceaccount.identity.fnmesh.local"
    )


def test_parse_round_trips() -> None:
    parsed = parse_identity("hello.default.serviceaccount.identity.fnmesh.local")
    assert parsed == Identity("hello", "default", "fnmesh.local")
    assert str(parsed) == "hello.default.serviceaccount.identity.fnmesh.local"
    assert parse_identity("a.b.serviceaccount.identity.x.y", "x.y").namespace == "b"


@pytest.mark.parametrize(
    ("service_account", "namespace", "trust_domain", "message"),
    [
        ("Hello", "default", "fnmesh.local", "service account 'Hello' is not a DNS-1123 label"),
        ("a.b", "default", "fnmesh.local", "service account 'a.b'"),
        ("hello", "", "fnmesh.local", "namespace is required"),
        ("hello", "x" * 64, "fnmesh.local", "namespace 'x"),
        ("hello", "default", "Bad_Domain", "trust domain 'Bad_Domain' is not a DNS name"),
        ("hello", "default", "", "trust domain is required"),
    ],
)
def test_bad_parts_are_named(
    service_account: str, namespace: str, trust_domain: str, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        identity_name(service_account, namespace, trust_domain)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "identity is required"),
        ("", "identity is required"),
        ("hello.default.serviceaccount.identity.other.local", "not in trust domain"),
        ("hello.serviceaccount.identity.fnmesh.local", "exactly a service account and a namespace"),
        ("a.b.c.serviceaccount.identity.fnmesh.local", "exactly a service account and a namespace"),
        ("HELLO.default.serviceaccount.identity.fnmesh.local", "service account 'HELLO'"),
        (".default.serviceaccount.identity.fnmesh.local", "service account is required"),
    ],
)
def test_bad_names_are_refused(name: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_identity(name)
    assert message in (check_identity(name) or "")


def test_valid_name_has_no_problem() -> None:
    assert check_identity("hello.default.serviceaccount.identity.fnmesh.local") is None
