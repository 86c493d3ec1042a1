"""A revision's secrets in its Deployment: mounted and referenced by name, never by value."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fnmesh.platform.model import Artifact, ObjectMeta, Revision, RevisionSpec
from fnmesh.platform.runtime.kubernetes import ClusterConfig, make_deployment
from fnmesh.platform.runtime.kubernetes.builders import (
    FETCH_CONTAINER,
    PROXY_CONTAINER,
    RUNTIME_CONTAINER,
)

Validate = Callable[[dict[str, Any]], None]
DIGEST = "sha256:" + "ab" * 32


def revision(**spec: Any) -> Revision:
    return Revision(
        metadata=ObjectMeta(name="hello-00002", namespace="team-a", uid="u-2"),
        spec=RevisionSpec(
            function="hello", handler="main:handle", artifact=Artifact(digest=DIGEST), **spec
        ),
    )


def containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"] + pod["initContainers"]}


def test_secrets_are_mounted_read_only_into_the_function_only(validate: Validate) -> None:
    made = make_deployment(revision(secrets=["db", "api-keys"]), ClusterConfig(), replicas=1)
    validate(made)
    volumes = {v["name"]: v for v in made["spec"]["template"]["spec"]["volumes"]}
    assert volumes["secret-db"] == {
        "name": "secret-db",
        "secret": {"secretName": "db", "defaultMode": 0o440},
    }
    assert volumes["secret-api-keys"]["secret"]["secretName"] == "api-keys"
    found = containers(made)
    mounts = {m["mountPath"]: m for m in found[RUNTIME_CONTAINER]["volumeMounts"]}
    assert mounts["/var/run/secrets/fnmesh/db"] == {
        "name": "secret-db",
        "mountPath": "/var/run/secrets/fnmesh/db",
        "readOnly": True,
    }
    assert "/var/run/secrets/fnmesh/api-keys" in mounts
    for other in (PROXY_CONTAINER, FETCH_CONTAINER):
        assert not any(m["name"].startswith("secret-") for m in found[other]["volumeMounts"])
    pod = made["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


def test_secret_env_is_a_secret_key_ref(validate: Validate) -> None:
    made = make_deployment(
        revision(secrets=["db"], secret_env={"DB_PASSWORD": "db/password"}, env={"MODE": "x"}),
        ClusterConfig(),
    )
    validate(made)
    env = containers(made)[RUNTIME_CONTAINER]["env"]
    assert {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
    } in env
    assert {"name": "MODE", "value": "x"} in env
    proxy_env = containers(made)[PROXY_CONTAINER]["env"]
    assert not any(e["name"] == "DB_PASSWORD" for e in proxy_env)


def test_no_secrets_no_secret_volumes() -> None:
    made = make_deployment(revision(), ClusterConfig())
    text = json.dumps(made)
    assert "secret-" not in text and "secretKeyRef" not in text
