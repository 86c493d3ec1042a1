"""Workload identity names (pure).

An identity is a DNS-like name derived from a service account:
``<serviceaccount>.<namespace>.serviceaccount.identity.<trust domain>``, e.g.
``hello.default.serviceaccount.identity.fnmesh.local``. It is the only name in a workload
certificate (its SAN DNS entry), and what peers pass as ``server_hostname`` to check who
they talk to. Platform components (gateway, activator, autoscaler, telemetry, operator,
api, identity) are service accounts of the ``fnmesh-system`` namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fnmesh.platform.model.names import check_name

TRUST_DOMAIN = "fnmesh.local"
SYSTEM_NAMESPACE = "fnmesh-system"
COMPONENTS = ("gateway", "activator", "autoscaler", "telemetry", "operator", "api", "identity")
_MIDDLE = "serviceaccount.identity"
_LABEL_LIMIT = 63
_NAME_LIMIT = 253
_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class Identity:
    service_account: str
    namespace: str
    trust_domain: str = TRUST_DOMAIN

    @property
    def name(self) -> str:
        return f"{self.service_account}.{self.namespace}.{_MIDDLE}.{self.trust_domain}"

    def __str__(self) -> str:
        return self.name


def check_trust_domain(value: object) -> str | None:
    """Return why ``value`` is not a usable trust domain, or None when it is."""
    if not isinstance(value, str) or not value:
        return "trust domain is required: use a DNS name such as 'fnmesh.local'"
    if len(value) > 200 or not _DOMAIN.match(value) or any(len(p) > 63 for p in value.split(".")):
        return (
            f"trust domain {value!r} is not a DNS name: use dot-separated lower-case labels"
            " of letters, digits and '-' (e.g. 'fnmesh.local')"
        )
    return None


def identity_name(service_account: str, namespace: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """The identity of ``service_account`` in ``namespace``; ValueError names a bad part."""
    problem = (
        check_name(service_account, what="service account", limit=_LABEL_LIMIT)
        or check_name(namespace, what="namespace", limit=_LABEL_LIMIT)
        or check_trust_domain(trust_domain)
    )
    if problem:
        raise ValueError(problem)
    name = Identity(service_account, namespace, trust_domain).name
    if len(name) > _NAME_LIMIT:
        raise ValueError(
            f"identity {name!r} is {len(name)} characters long; a DNS name allows {_NAME_LIMIT}:"
            " shorten the service account or namespace"
        )
    return name


def component_identity(component: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """The identity of a platform component (``gateway``, ``activator``, ...)."""
    return identity_name(component, SYSTEM_NAMESPACE, trust_domain)


def parse_identity(name: object, trust_domain: str = TRUST_DOMAIN) -> Identity:
    """Split an identity name into its parts; ValueError says what is wrong with it."""
    if not isinstance(name, str) or not name:
        raise ValueError(
            "identity is required: use '<serviceaccount>.<namespace>.serviceaccount.identity."
            f"{trust_domain}'"
        )
    suffix = f".{_MIDDLE}.{trust_domain}"
    if not name.endswith(suffix):
        raise ValueError(
            f"identity {name!r} is not in trust domain {trust_domain!r}: use"
            f" '<serviceaccount>.<namespace>{suffix}'"
        )
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 2:
        raise ValueError(
            f"identity {name!r} must have exactly a service account and a namespace before"
            f" {suffix!r}, e.g. 'hello.default{suffix}'"
        )
    service_account, namespace = parts
    identity_name(service_account, namespace, trust_domain)  # checks each part and the length
    return Identity(service_account, namespace, trust_domain)


def check_identity(name: object, trust_domain: str = TRUST_DOMAIN) -> str | None:
    """Return why ``name`` is not a valid identity in ``trust_domain``, or None."""
    try:
        parse_identity(name, trust_domain)
    except ValueError as error:
        return str(error)
    return None
