"""The test cluster holds what a real API server holds: RBAC, CRD admission, ownership.

Each test here must fail against a lax fake: a component asking for what its Role lacks
is refused, an invalid custom resource is refused naming the field, unknown fields are
pruned, a revision's spec cannot change, owned objects go with their owner, and the
server's bookkeeping (uid, resourceVersion, generation, 409 on a stale write) holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from kmockapi import ApiThread, configuration, token_for

from fnmesh.platform.model import Revision
from fnmesh.platform.runtime.kubernetes.scaler import KubernetesScaler
from fnmesh.platform.store.errors import StoreError
from fnmesh.platform.store.kubernetes import KubeClient

NS = "team-a"
GROUP = f"/apis/fnmesh.dev/v1alpha1/namespaces/{NS}"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
DIGEST = "sha256:" + "1" * 64
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread(namespaces=(NS, "fnmesh-system")) as thread:
        yield thread


def function(name: str = "hello", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {"handler": "main:handle", **spec},
    }


def revision(name: str = "hello-00001", owner: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {"name": name},
        "spec": {"function": "hello", "handler": "main:handle", "artifact": {"digest": DIGEST}},
    }
    if owner is not None:
        body["metadata"]["ownerReferences"] = [reference(owner)]
    return body


def deployment(name: str, owner: dict[str, Any], finalizers: list[str] | None = None) -> Any:
    meta: dict[str, Any] = {"name": name, "ownerReferences": [reference(owner)]}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {}}


def reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }


# -- RBAC: the chart's roles, one token per component -------------------------------------


def test_a_component_is_refused_what_its_role_lacks(cluster: ApiThread) -> None:
    cluster.request("POST", f"{GROUP}/functions", function())
    made = cluster.request("POST", f"{GROUP}/revisions", revision())
    cluster.request("POST", DEPLOYMENTS, deployment("hello-00001", made))
    stamped = Revision.from_dict(made)

    def scale_as(component: str) -> None:
        client = KubeClient(kubernetes.client.ApiClient(configuration(cluster.url, component)))
        try:
            asyncio.run(KubernetesScaler(client).scale(stamped, 3))
        finally:
            client.close()

    scale_as("autoscaler")  # its Role grants deployments/scale
    assert cluster.request("GET", f"{DEPLOYMENTS}/hello-00001")["spec"]["replicas"] == 3
    with pytest.raises(
        StoreError, match=r"fnmesh-gateway\" cannot patch resource \"deployments/scale"
    ):
        scale_as("gateway")  # the gateway only reads


@pytest.mark.parametrize(
    ("component", "method", "path", "verb", "target"),
    [
        # the autoscaler may set a Deployment's scale, never the Deployment itself
        ("autoscaler", "PATCH", f"{DEPLOYMENTS}/hello-00001", "patch", "deployments"),
        # readers do not write, and not the status either
        ("gateway", "PATCH", f"{GROUP}/functions/hello/status", "patch", "functions/status"),
        ("activator", "DELETE", f"{GROUP}/functions/hello", "delete", "functions"),
        # the API's tokens live in the release namespace only
        ("api", "GET", f"{GROUP}/tokens", "list", "tokens"),
        # function secrets: only the API touches them
        ("operator", "GET", f"/api/v1/namespaces/{NS}/secrets", "list", "secrets"),
    ],
)
def test_requests_outside_a_role_are_403_status_objects(
    cluster: ApiThread, component: str, method: str, path: str, verb: str, target: str
) -> None:
    cluster.request("POST", f"{GROUP}/functions", function())
    status, body = cluster.answer(method, path, {}, token=token_for(component), **MERGE)
    assert status == 403, body
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
    account = f"system:serviceaccount:fnmesh-system:fnmesh-{component}"
    assert f'User "{account}" cannot {verb} resource "{target}"' in body["message"]
    assert f'in the namespace "{NS}"' in body["message"]


def test_what_a_role_grants_is_served(cluster: ApiThread) -> None:
    cluster.request("POST", f"{GROUP}/functions", function())
    for component in ("api", "gateway", "activator", "autoscaler", "operator"):
        status, _ = cluster.answer("GET", f"{GROUP}/functions/hello", token=token_for(component))
        assert status == 200, component
    tokens = "/apis/fnmesh.dev/v1alpha1/namespaces/fnmesh-system/tokens"
    assert cluster.answer("GET", tokens, token=token_for("api"))[0] == 200


def test_no_token_is_anonymous_and_an_unknown_one_unauthorized(cluster: ApiThread) -> None:
    status, body = cluster.answer("GET", f"{GROUP}/functions", token=None)
    assert status == 403 and 'User "system:anonymous"' in body["message"]
    status, body = cluster.answer("GET", f"{GROUP}/functions", token="made-up")
    assert (status, body["reason"]) == (401, "Unauthorized")


# -- custom resources: pruned and validated as their CRD says ------------------------------


def test_a_schema_invalid_custom_resource_is_refused_naming_the_field(cluster: ApiThread) -> None:
    status, body = cluster.answer("POST", f"{GROUP}/functions", function(scale={"min": "two"}))
    assert status == 422, body
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('Function.fnmesh.dev "hello" is invalid: spec.scale.min:')
    assert body["details"]["causes"][0]["field"] == "spec.scale.min"
    assert cluster.names("fnmesh.dev/v1alpha1/functions", NS) == set()
    # the same check holds on updates and patches
    cluster.request("POST", f"{GROUP}/functions", function())
    patch = {"spec": {"concurrency": "lots"}}
    status, body = cluster.answer("PATCH", f"{GROUP}/functions/hello", patch, **MERGE)
    assert status == 422 and "spec.concurrency" in body["message"]


def test_unknown_fields_are_pruned(cluster: ApiThread) -> None:
    made = cluster.request("POST", f"{GROUP}/functions", function(handlr="typo:kept?"))
    assert "handlr" not in made["spec"]
    (stored,) = cluster.objects("fnmesh.dev/v1alpha1/functions", NS)
    assert stored["spec"] == {"handler": "main:handle"}


def test_a_revisions_spec_is_immutable_but_its_status_is_not(cluster: ApiThread) -> None:
    cluster.request("POST", f"{GROUP}/revisions", revision())
    change = {"spec": {"handler": "other:handle"}}
    status, body = cluster.answer("PATCH", f"{GROUP}/revisions/hello-00001", change, **MERGE)
    assert status == 422, body
    assert "spec: Invalid value" in body["message"] and "immutable" in body["message"]
    labelled = {"metadata": {"labels": {"fnmesh.dev/commit": "abc"}}}
    assert cluster.answer("PATCH", f"{GROUP}/revisions/hello-00001", labelled, **MERGE)[0] == 200
    ready = {"status": {"readyReplicas": 1}}
    path = f"{GROUP}/revisions/hello-00001/status"
    assert cluster.answer("PATCH", path, ready, **MERGE)[0] == 200


# -- ownership: the garbage collector ------------------------------------------------------


def test_deleting_an_owner_collects_what_it_owns(cluster: ApiThread) -> None:
    owner = cluster.request("POST", f"{GROUP}/functions", function())
    rev = cluster.request("POST", f"{GROUP}/revisions", revision(owner=owner))
    cluster.request("POST", DEPLOYMENTS, deployment("hello-00001", rev))
    cluster.request("POST", DEPLOYMENTS, deployment("held", rev, finalizers=["example.com/hold"]))
    other = cluster.request("POST", f"{GROUP}/functions", function("other"))
    cluster.request("POST", DEPLOYMENTS, deployment("other-00001", other))

    cluster.request("DELETE", f"{GROUP}/functions/hello")
    assert cluster.names("fnmesh.dev/v1alpha1/revisions", NS) == set()
    assert cluster.names("apps/v1/deployments", NS) == {"held", "other-00001"}
    (held,) = [
        d for d in cluster.objects("apps/v1/deployments", NS) if d["metadata"]["name"] == "held"
    ]
    assert held["metadata"]["deletionTimestamp"]  # waits for its finalizer, as on a cluster


def test_orphan_propagation_keeps_the_dependents(cluster: ApiThread) -> None:
    owner = cluster.request("POST", f"{GROUP}/functions", function())
    cluster.request("POST", f"{GROUP}/revisions", revision(owner=owner))
    cluster.request("DELETE", f"{GROUP}/functions/hello", {"propagationPolicy": "Orphan"})
    (kept,) = cluster.objects("fnmesh.dev/v1alpha1/revisions", NS)
    assert "ownerReferences" not in kept["metadata"]


# -- the server's bookkeeping ----------------------------------------------------------------


def test_writes_stamp_uid_versions_and_generation(cluster: ApiThread) -> None:
    made = cluster.request("POST", f"{GROUP}/functions", function())
    meta = made["metadata"]
    assert meta["uid"] and meta["generation"] == 1 and meta["resourceVersion"]
    labelled = cluster.request(
        "PATCH", f"{GROUP}/functions/hello", {"metadata": {"labels": {"a": "b"}}}, **MERGE
    )
    assert labelled["metadata"]["generation"] == 1  # metadata is not the spec
    assert int(labelled["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    changed = cluster.request(
        "PATCH", f"{GROUP}/functions/hello", {"spec": {"concurrency": 4}}, **MERGE
    )
    assert changed["metadata"]["generation"] == 2
    assert changed["metadata"]["uid"] == meta["uid"]


def test_a_stale_write_is_a_conflict_and_a_failed_test_is_invalid(cluster: ApiThread) -> None:
    made = cluster.request("POST", f"{GROUP}/functions", function())
    cluster.request("PATCH", f"{GROUP}/functions/hello", {"spec": {"concurrency": 4}}, **MERGE)
    stale = {**made, "spec": {"handler": "main:other"}}
    status, body = cluster.answer("PUT", f"{GROUP}/functions/hello", stale)
    assert (status, body["reason"]) == (409, "Conflict")
    failing = [
        {"op": "test", "path": "/spec/concurrency", "value": 99},
        {"op": "replace", "path": "/spec/concurrency", "value": 5},
    ]
    status, body = cluster.answer("PATCH", f"{GROUP}/functions/hello", failing, **JSON_PATCH)
    assert (status, body["reason"]) == (422, "Invalid")
