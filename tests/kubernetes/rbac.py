"""Kubernetes' RBAC authorizer, for the test cluster: who may do what, decided purely.

``Rbac.from_objects`` reads Roles, ClusterRoles and their bindings (as ``helm template``
renders them); ``Rbac.allows`` answers one request's ``Attributes`` the way the API
server's RBAC authorizer does:

- a ClusterRoleBinding grants its ClusterRole everywhere (every namespace, and
  cluster-scoped resources); a RoleBinding grants its Role or ClusterRole in the
  binding's namespace only;
- a rule matches when the API group, the resource (``plural`` or ``plural/subresource``),
  the verb and, when the rule names some, the object's name all match; ``*`` matches any;
- subjects are ServiceAccounts (user ``system:serviceaccount:<ns>:<name>``), Users and
  Groups; ``system:masters`` may do everything, as on a real cluster.

No aggregation and no non-resource URLs: the chart uses neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

MASTERS = "system:masters"


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> User:
        return cls(
            f"system:serviceaccount:{namespace}:{name}",
            (
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ),
        )


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


@dataclasses.dataclass(frozen=True)
class Attributes:
    """One request, as the authorizer sees it."""

    user: User
    verb: str  # get list watch create update patch delete deletecollection
    group: str
    resource: str  # the plural
    subresource: str | None = None
    namespace: str | None = None  # None: cluster-scoped, or across all namespaces
    name: str | None = None

    @property
    def target(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def refusal(self) -> str:
        """The API server's message for a refusal."""
        what = f"{self.resource}.{self.group}" if self.group else self.resource
        subject = f'{what} "{self.name}"' if self.name else what
        where = (
            f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        )
        return (
            f'{subject} is forbidden: User "{self.user.name}" cannot {self.verb} resource '
            f'"{self.target}" in API group "{self.group}"{where}'
        )


@dataclasses.dataclass(frozen=True)
class Rule:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    names: frozenset[str]

    @classmethod
    def parse(cls, rule: Mapping[str, Any]) -> Rule:
        if rule.get("nonResourceURLs"):
            raise ValueError(f"nonResourceURLs are not modelled here: {rule}")
        return cls(
            frozenset(rule.get("apiGroups") or ()),
            frozenset(rule.get("resources") or ()),
            frozenset(rule.get("verbs") or ()),
            frozenset(rule.get("resourceNames") or ()),
        )

    def matches(self, request: Attributes) -> bool:
        if not ({"*", request.group} & self.groups and {"*", request.verb} & self.verbs):
            return False
        wanted = {"*", request.target}
        if request.subresource:
            wanted.add(f"*/{request.subresource}")
        if not wanted & self.resources:
            return False
        return not self.names or request.name in self.names


@dataclasses.dataclass(frozen=True)
class Grant:
    """A role's rules, given to some subjects, everywhere or in one namespace."""

    rules: tuple[Rule, ...]
    users: frozenset[str]
    groups: frozenset[str]
    namespace: str | None  # None: a ClusterRoleBinding

    def covers(self, request: Attributes) -> bool:
        if request.user.name not in self.users and not self.groups & set(request.user.groups):
            return False
        if self.namespace is not None and request.namespace != self.namespace:
            return False
        return any(rule.matches(request) for rule in self.rules)


@dataclasses.dataclass(frozen=True)
class Rbac:
    grants: tuple[Grant, ...]

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]]) -> Rbac:
        objects = list(objects)
        roles: dict[tuple[str, str | None, str], tuple[Rule, ...]] = {}
        for obj in objects:
            if obj.get("kind") in ("Role", "ClusterRole"):
                namespace = obj["metadata"].get("namespace") if obj["kind"] == "Role" else None
                rules = tuple(Rule.parse(rule) for rule in obj.get("rules") or ())
                roles[obj["kind"], namespace, obj["metadata"]["name"]] = rules
        grants = []
        for obj in objects:
            if obj.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
                continue
            namespace = obj["metadata"].get("namespace") if obj["kind"] == "RoleBinding" else None
            ref = obj["roleRef"]
            scope = namespace if ref["kind"] == "Role" else None
            key = (ref["kind"], scope, ref["name"])
            if key not in roles:
                raise ValueError(f"{obj['kind']} {obj['metadata']['name']} names no role: {ref}")
            users, groups = set(), set()
            for subject in obj.get("subjects") or ():
                if subject["kind"] == "ServiceAccount":
                    sa = User.service_account(subject["namespace"], subject["name"])
                    users.add(sa.name)
                elif subject["kind"] == "User":
                    users.add(subject["name"])
                elif subject["kind"] == "Group":
                    groups.add(subject["name"])
            grants.append(Grant(roles[key], frozenset(users), frozenset(groups), namespace))
        return cls(tuple(grants))

    def allows(self, request: Attributes) -> bool:
        if MASTERS in request.user.groups:
            return True
        return any(grant.covers(request) for grant in self.grants)
