"""Traffic by hand, rollback and promote through the API, carried out by the controller."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from apikit import Api, running_api

from fnmesh.platform.api.openapi import document
from fnmesh.platform.controller.commands import ANNOTATION_COMMAND
from fnmesh.platform.controller.plan import plan
from fnmesh.platform.model import TrafficTarget
from fnmesh.platform.model.traffic import split_weights


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as running:
        yield running


async def two_revisions(api: Api) -> None:
    api.deploy(1)
    await api.until("hello-00001 to serve", lambda: api.weights() == {"hello-00001": 100})
    api.deploy(2)
    await api.until("hello-00002 to serve", lambda: api.weights() == {"hello-00002": 100})


def causes(body: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["field"]: c["message"] for c in body.get("details", {}).get("causes", [])}


async def test_traffic_pins_weights_and_tags(api: Api) -> None:
    await two_revisions(api)
    traffic = [
        {"revision": "hello-00001", "percent": 30},
        {"revision": "hello-00002", "percent": 70},
        {"revision": "hello-00001", "tag": "old"},
    ]
    code, body = await api.call("PUT", "/functions/hello/traffic", {"traffic": traffic})
    assert code == 200, body
    assert body["spec"]["traffic"][2] == {"revision": "hello-00001", "percent": 0, "tag": "old"}
    await api.until(
        "the pinned weights", lambda: api.weights() == {"hello-00001": 30, "hello-00002": 70}
    )
    assert TrafficTarget("hello-00001", 0, "old") in api.function().status.traffic
    split = api.store.get("TrafficSplit", "default", "hello")
    assert dict(split_weights(split)) == {"hello-00001": 30, "hello-00002": 70}
    assert [r["metadata"]["name"] for r in api.store.list("Revision")[0]] == [
        "hello-00001",
        "hello-00002",
    ]  # changing traffic stamps no revision


async def test_bad_traffic_is_refused_with_every_cause(api: Api) -> None:
    await two_revisions(api)
    traffic = [
        {"revision": "hello-00001", "percent": 50},
        {"revision": "hello-00002", "percent": 40, "tag": "Not_A_Label"},
        {"revision": "other-00001", "percent": 10},
    ]
    code, body = await api.call("PUT", "/functions/hello/traffic", {"traffic": traffic})
    assert code == 422 and body["reason"] == "Invalid"
    found = causes(body)
    assert "traffic[1].tag" in found and "DNS-1123" in found["traffic[1].tag"]
    assert "not a revision of function 'hello'" in found["traffic[2].revision"]
    code, body = await api.call(
        "PUT",
        "/functions/hello/traffic",
        {"traffic": [{"revision": "hello-00009", "percent": 100}]},
    )
    assert code == 422 and "does not exist" in causes(body)["traffic[0].revision"]
    code, body = await api.call(
        "PUT", "/functions/hello/traffic", {"traffic": [{"revision": "hello-00001", "percent": 90}]}
    )
    assert code == 422 and "add up to 90" in causes(body)["traffic"]
    code, body = await api.call("PUT", "/functions/hello/traffic", {"weights": []})
    assert code == 400
    code, body = await api.call(
        "PUT", "/functions/hello/traffic", {"traffic": [], "resourceVersion": "1"}
    )
    assert code == 409 and body["reason"] == "Conflict"
    code, body = await api.call("PUT", "/functions/nope/traffic", {"traffic": []})
    assert code == 404


async def test_rollback_and_promote_in_one_step_each(api: Api) -> None:
    await two_revisions(api)
    code, body = await api.call("POST", "/functions/hello/rollback")
    assert code == 200, body
    assert body["status"]["rollout"]["phase"] == "RolledBack"
    assert body["status"]["traffic"] == [{"revision": "hello-00001", "percent": 100}]
    assert ANNOTATION_COMMAND in body["metadata"]["annotations"]
    code, body = await api.call("POST", "/functions/hello/rollback")
    assert code == 409 and "no earlier ready revision" in body["message"]
    code, body = await api.call("POST", "/functions/hello/promote")
    assert code == 200, body
    assert body["status"]["traffic"] == [{"revision": "hello-00002", "percent": 100}]
    assert body["status"]["rollout"]["reason"] == "PromotedByHand"


async def test_rollback_to_a_named_revision_drops_pins_and_keeps_tags(api: Api) -> None:
    await two_revisions(api)
    api.deploy(3)
    await api.until("hello-00003 to serve", lambda: api.weights() == {"hello-00003": 100})
    traffic = [
        {"revision": "hello-00002", "percent": 50, "tag": "two"},
        {"revision": "hello-00003", "percent": 50},
    ]
    assert (await api.call("PUT", "/functions/hello/traffic", {"traffic": traffic}))[0] == 200
    code, body = await api.call("POST", "/functions/hello/rollback", {"revision": "hello-00001"})
    assert code == 200, body
    assert body["spec"]["traffic"] == [{"revision": "hello-00002", "percent": 0, "tag": "two"}]
    assert api.weights() == {"hello-00001": 100}
    code, body = await api.call("POST", "/functions/hello/rollback", {"revision": "hello-00003"})
    assert code == 409 and "fn promote" in body["message"]
    code, body = await api.call("POST", "/functions/hello/rollback", {"revision": 3})
    assert code == 400


async def test_rollback_of_a_single_revision_is_refused(api: Api) -> None:
    api.deploy(1)
    await api.until("hello-00001 to serve", lambda: api.weights() == {"hello-00001": 100})
    code, body = await api.call("POST", "/functions/hello/rollback")
    assert code == 409 and body["reason"] == "Conflict"


async def test_without_a_controller_the_request_is_accepted_not_done(tmp_path: Path) -> None:
    async with running_api(tmp_path, controller=False) as api:
        api.deploy(1)
        code, body = await api.call("POST", "/functions/hello/promote", wait="0")
        assert code == 409 and "no revision yet" in body["message"]
        ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "ReplicasReady"}]}
        revision = plan(api.function(), [], url=None, now="2026-01-01T00:00:00Z").create
        assert revision is not None
        api.store.create({**revision.to_dict(), "status": ready})
        code, body = await api.call("POST", "/functions/hello/promote", wait="0.05")
        assert code == 202
        command = json.loads(body["metadata"]["annotations"][ANNOTATION_COMMAND])
        assert (command["action"], command["latest"]) == ("promote", "hello-00001")
        code, _ = await api.call("POST", "/functions/hello/promote", wait="nope")
        assert code == 400


def test_the_routes_are_in_the_openapi_document() -> None:
    paths = document()["paths"]
    base = "/apis/fnmesh.dev/v1alpha1/namespaces/{namespace}/functions/{name}"
    assert "put" in paths[base + "/traffic"]
    assert "post" in paths[base + "/rollback"] and "post" in paths[base + "/promote"]
    traffic = document()["components"]["schemas"]["TrafficBody"]["properties"]["traffic"]
    assert set(traffic["items"]["properties"]) == {"revision", "percent", "tag"}
