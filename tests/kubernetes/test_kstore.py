"""The Kubernetes store against an in-memory API server: the Store protocol's behaviours."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import jsonschema
import kmock
import kubernetes
import kubernetes_validate
import pytest
from kmockapi import ApiThread, KubeApi, configuration

from fnmesh.platform.runtime.kubernetes.crds import token_crd
from fnmesh.platform.store import Conflict, Event, Expired, NotFound
from fnmesh.platform.store.kubernetes import (
    ApiError,
    KubeClient,
    KubernetesStore,
    Resource,
    platform_resources,
)


def fn(name: str, handler: str = "m:f", namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"handler": handler},
    }


def client_for(url: str) -> KubeClient:
    # the store itself, not one component: the cluster's admin
    return KubeClient(kubernetes.client.ApiClient(configuration(url)), timeout=5)


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    with ApiThread() as thread:
        yield thread


@pytest.fixture
def store(cluster: ApiThread) -> Iterator[KubernetesStore]:
    store = KubernetesStore(client_for(cluster.url), retry_delay=0.05)
    yield store
    store.close()


def test_create_stamps_metadata(store: KubernetesStore) -> None:
    created = store.create(fn("a"))
    meta = created["metadata"]
    assert meta["generation"] == 1
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert created["status"] == {}
    assert store.get("Function", "default", "a") == created


def test_create_ignores_server_fields_it_is_given(store: KubernetesStore) -> None:
    body = fn("a")
    body["metadata"].update(uid="mine", resourceVersion="99", generation=7)
    created = store.create(body)
    assert created["metadata"]["uid"] != "mine"
    assert created["metadata"]["generation"] == 1


def test_create_twice_is_a_conflict(store: KubernetesStore) -> None:
    store.create(fn("a"))
    with pytest.raises(Conflict, match="already exists"):
        store.create(fn("a"))


def test_a_stale_update_is_refused_and_changes_nothing(store: KubernetesStore) -> None:
    first = store.create(fn("a"))
    second = store.update({**first, "spec": {"handler": "m:g"}})
    assert second["metadata"]["generation"] == 2
    with pytest.raises(Conflict, match="stale"):
        store.update({**first, "spec": {"handler": "m:h"}})
    assert store.get("Function", "default", "a")["spec"] == {"handler": "m:g"}


def test_an_update_without_a_resource_version_replaces_the_current_object(
    store: KubernetesStore,
) -> None:
    store.create(fn("a"))
    updated = store.update(fn("a", handler="m:z"))
    assert updated["spec"] == {"handler": "m:z"}
    assert updated["metadata"]["generation"] == 2


def test_an_update_keeps_the_metadata_it_is_not_given(store: KubernetesStore) -> None:
    body = fn("a")
    body["metadata"]["labels"] = {"team": "x"}
    store.create(body)
    updated = store.update(fn("a", handler="m:g"))
    assert updated["metadata"]["labels"] == {"team": "x"}
    relabelled = store.update({**updated, "metadata": {**updated["metadata"], "labels": {}}})
    assert relabelled["metadata"].get("labels", {}) == {}


def test_status_updates_do_not_bump_the_generation(store: KubernetesStore) -> None:
    first = store.create(fn("a"))
    after = store.update_status({**first, "status": {"url": "x"}, "spec": {"handler": "ignored"}})
    assert after["metadata"]["generation"] == 1
    assert after["spec"] == {"handler": "m:f"}
    assert after["status"] == {"url": "x"}
    with pytest.raises(Conflict):
        store.update_status({**first, "status": {"url": "y"}})


def test_spec_updates_leave_the_status_alone(store: KubernetesStore) -> None:
    first = store.create(fn("a"))
    with_status = store.update_status({**first, "status": {"url": "x"}})
    updated = store.update({**with_status, "spec": {"handler": "m:g"}, "status": {}})
    assert updated["status"] == {"url": "x"}


def test_list_filters_by_namespace_and_labels(store: KubernetesStore) -> None:
    store.create(fn("a"))
    store.create(fn("b", namespace="other"))
    labelled = fn("c")
    labelled["metadata"]["labels"] = {"team": "x"}
    store.create(labelled)
    items, version = store.list("Function")
    assert [o["metadata"]["name"] for o in items] == ["a", "c", "b"]
    assert all(o["kind"] == "Function" for o in items)
    assert version == max(int(o["metadata"]["resourceVersion"]) for o in items)
    assert [o["metadata"]["name"] for o in store.list("Function", "other")[0]] == ["b"]
    assert [o["metadata"]["name"] for o in store.list("Function", labels={"team": "x"})[0]] == ["c"]


def test_delete_and_not_found(store: KubernetesStore) -> None:
    store.create(fn("a"))
    deleted = store.delete("Function", "default", "a")
    assert deleted["metadata"]["name"] == "a"
    with pytest.raises(NotFound, match="Function default/a not found"):
        store.get("Function", "default", "a")
    with pytest.raises(NotFound):
        store.delete("Function", "default", "a")
    with pytest.raises(NotFound):
        store.update(fn("a"))


def test_tokens_and_traffic_splits_are_kept_too(store: KubernetesStore) -> None:
    token = {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Token",
        "metadata": {"name": "admin", "namespace": "fnmesh-system"},
        "spec": {"sha256": "0" * 64, "role": "admin"},
    }
    store.create(token)
    assert store.list("Token", "fnmesh-system")[0][0]["spec"] == token["spec"]
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"service": "hello", "backends": [{"service": "hello-00001", "weight": 100}]},
    }
    created = store.create(split)
    moved = {"service": "hello", "backends": [{"service": "hello-00002", "weight": 100}]}
    assert store.update({**created, "spec": moved})["spec"] == moved


def test_the_token_crd_accepts_what_the_api_keeps() -> None:
    crd = token_crd()
    kubernetes_validate.validate(crd, "1.33", strict=True)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    token = {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Token",
        "metadata": {"name": "admin", "namespace": "fnmesh-system"},
        "spec": {"sha256": "0f" * 32, "role": "admin"},
    }
    jsonschema.validate(token, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**token, "spec": {"sha256": "the secret itself"}}, schema)
    assert crd["spec"]["names"]["plural"] == platform_resources()["Token"].plural


def test_an_unknown_kind_names_the_kinds_kept(store: KubernetesStore) -> None:
    with pytest.raises(ValueError, match="Function, Revision, Token, TrafficSplit"):
        store.get("Pod", "default", "x")


def test_the_split_version_follows_the_cluster() -> None:
    resource = platform_resources("split.smi-spec.io/v1alpha2")["TrafficSplit"]
    assert (
        resource.path("ns", "hello")
        == "/apis/split.smi-spec.io/v1alpha2/namespaces/ns/trafficsplits/hello"
    )
    assert Resource("", "v1", "services", "Service").path("ns") == "/api/v1/namespaces/ns/services"


def test_other_refusals_keep_their_status(cluster: ApiThread) -> None:
    client = client_for(cluster.url)
    try:
        with pytest.raises(ApiError) as refused:
            client.request("PATCH", "/apis/fnmesh.dev/v1alpha1/namespaces/default/functions")
        assert refused.value.status == 405
    finally:
        client.close()


def test_the_test_server_refuses_a_failed_patch_test_with_422(
    cluster: ApiThread, store: KubernetesStore
) -> None:
    created = store.create(fn("a"))
    path = "/apis/fnmesh.dev/v1alpha1/namespaces/default/functions/a"
    test = {"op": "test", "path": "/metadata/resourceVersion", "value": "stale"}
    with pytest.raises(ApiError) as refused:
        store.client.request("PATCH", path, body=[test], content_type="application/json-patch+json")
    assert refused.value.status == 422
    ok = [{**test, "value": created["metadata"]["resourceVersion"]}]
    ok.append({"op": "add", "path": "/metadata/labels", "value": {"a": "b"}})
    patched = store.client.request(
        "PATCH", path, body=ok, content_type="application/json-patch+json"
    )
    assert patched["metadata"]["labels"] == {"a": "b"}


async def collect(store: KubernetesStore, since: int, count: int) -> list[Event]:
    seen: list[Event] = []
    async for event in store.watch(frozenset({"Function"}), since):
        seen.append(event)
        if len(seen) == count:
            break
    return seen


async def test_watch_replays_then_follows_live_changes(store: KubernetesStore) -> None:
    start = (await asyncio.to_thread(store.list, "Function"))[1]
    await asyncio.to_thread(store.create, fn("a"))  # before the watch: replayed
    watcher = asyncio.create_task(collect(store, start, 3))
    current = await asyncio.to_thread(store.get, "Function", "default", "a")
    await asyncio.to_thread(store.update, {**current, "spec": {"handler": "m:g"}})
    revision = {**fn("hello-00001"), "kind": "Revision", "apiVersion": "fnmesh.dev/v1alpha1"}
    artifact = {"digest": "sha256:" + "1" * 64, "build": "b-1"}
    revision["spec"] = {"function": "hello", "handler": "m:f", "artifact": artifact}
    await asyncio.to_thread(store.create, revision)  # another kind: not seen
    await asyncio.to_thread(store.delete, "Function", "default", "a")
    events = await asyncio.wait_for(watcher, 10)
    assert [(e.type, e.kind, e.name) for e in events] == [
        ("ADDED", "Function", "a"),
        ("MODIFIED", "Function", "a"),
        ("DELETED", "Function", "a"),
    ]
    versions = [e.resource_version for e in events]
    assert versions == sorted(versions) and versions[0] > start
    assert events[1].object["spec"] == {"handler": "m:g"}


async def test_watch_merges_the_kinds_it_follows(store: KubernetesStore) -> None:
    start = (await asyncio.to_thread(store.list, "Function"))[1]
    seen: list[Event] = []

    async def follow() -> None:
        async for event in store.watch(frozenset({"Function", "Token"}), start):
            seen.append(event)
            if len(seen) == 2:
                return

    task = asyncio.create_task(follow())
    await asyncio.to_thread(store.create, fn("a"))
    token = {**fn("t"), "kind": "Token", "spec": {"sha256": "0" * 64}}
    await asyncio.to_thread(store.create, token)
    await asyncio.wait_for(task, 10)
    assert sorted((e.kind, e.name) for e in seen) == [("Function", "a"), ("Token", "t")]


async def test_watch_from_a_forgotten_version_expires() -> None:
    with ApiThread(KubeApi(keep_events=5)) as cluster:
        store = KubernetesStore(client_for(cluster.url))
        try:
            for i in range(10):
                await asyncio.to_thread(store.create, fn(f"f{i}"))
            with pytest.raises(Expired, match="too old"):
                await asyncio.wait_for(collect(store, 1, 1), 10)
        finally:
            store.close()


async def test_watch_goes_on_after_the_server_ends_a_stream(cluster: ApiThread) -> None:
    store = KubernetesStore(client_for(cluster.url), watch_timeout=1)
    try:
        start = (await asyncio.to_thread(store.list, "Function"))[1]
        watcher = asyncio.create_task(collect(store, start, 2))
        await asyncio.to_thread(store.create, fn("a"))
        await asyncio.sleep(1.5)  # the server closes the first stream after 1 s
        await asyncio.to_thread(store.create, fn("b"))
        events = await asyncio.wait_for(watcher, 10)
        assert [(e.type, e.name) for e in events] == [("ADDED", "a"), ("ADDED", "b")]
        watches = list(cluster.api[kmock.action.WATCH])
        assert len(watches) >= 2
        assert watches[-1].params["resourceVersion"] == str(events[0].resource_version)
    finally:
        store.close()
