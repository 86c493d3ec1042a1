"""Function secrets on a cluster: Secrets of fnmesh's own, against an in-memory API server."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from kmockapi import ApiThread

from fnmesh.platform.store import Conflict, NotFound
from fnmesh.platform.store.kubernetes import KubeClient
from fnmesh.platform.store.kubernetes_secrets import (
    LABEL_SECRET,
    KubernetesSecrets,
    make_secret,
)

PLAINTEXT = b"plaintext-k8s-4d2a"


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread() as thread:
        yield thread


@pytest.fixture
def secrets(cluster: ApiThread) -> Iterator[KubernetesSecrets]:
    client = KubeClient(cluster.api_client("api"), timeout=5)
    yield KubernetesSecrets(client, now=lambda: "2026-12-01T10:00:00Z")
    client.close()


def test_the_secret_object_is_opaque_labelled_and_base64(validate: object) -> None:
    body = make_secret("team", "db", {"password": PLAINTEXT}, "2026-12-01T10:00:00Z")
    assert body["type"] == "Opaque"
    assert body["metadata"]["labels"] == {LABEL_SECRET: "true"}
    assert base64.b64decode(body["data"]["password"]) == PLAINTEXT
    validate(body)  # type: ignore[operator]


def test_put_list_info_read_delete(secrets: KubernetesSecrets, cluster: ApiThread) -> None:
    info = secrets.put("team", "db", {"password": PLAINTEXT}, replace=False)
    assert (info.name, info.namespace, info.keys) == ("db", "team", ("password",))
    (stored,) = cluster.objects("v1/secrets", "team")
    assert stored["type"] == "Opaque"
    assert [s.name for s in secrets.list("team")] == ["db"]
    assert secrets.info("team", "db").keys == ("password",)
    assert secrets.read("team", "db") == {"password": PLAINTEXT}
    with pytest.raises(Conflict, match="--replace"):
        secrets.put("team", "db", {"k": b"v"}, replace=False)
    assert secrets.put("team", "db", {"k": b"v"}, replace=True).keys == ("k",)
    assert secrets.read("team", "db") == {"k": b"v"}
    secrets.delete("team", "db")
    assert cluster.names("v1/secrets", "team") == set()
    with pytest.raises(NotFound, match="fn secret create db"):
        secrets.info("team", "db")


def test_secrets_it_did_not_make_are_left_alone(
    secrets: KubernetesSecrets, cluster: ApiThread
) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "admin-token", "namespace": "team"},
        "type": "Opaque",
        "data": {"token": base64.b64encode(b"theirs").decode()},
    }
    cluster.request("POST", "/api/v1/namespaces/team/secrets", foreign)
    assert secrets.list("team") == []
    with pytest.raises(NotFound):
        secrets.info("team", "admin-token")
    with pytest.raises(NotFound):
        secrets.delete("team", "admin-token")
    with pytest.raises(Conflict, match="did not create"):
        secrets.put("team", "admin-token", {"token": b"mine"}, replace=True)
    assert cluster.names("v1/secrets", "team") == {"admin-token"}
