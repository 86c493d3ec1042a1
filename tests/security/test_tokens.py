"""Least privilege on the control plane: roles, namespace scopes, expiry, revocation,
hashes only, and private functions reached through the gateway with a token."""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from api.apikit import Api, running_api
from support.e2e import Platform, http, wait_for

from fnmesh.platform.api.access import PERMISSION
from fnmesh.platform.api.app import ROUTES
from fnmesh.platform.api.auth import PUBLIC_PATHS
from fnmesh.platform.build import Builder
from fnmesh.platform.model.access import TAP_FIELDS
from fnmesh.platform.store import SqliteStore
from fnmesh.platform.store.tokens import SYSTEM_NAMESPACE, Tokens

GROUP = "/apis/fnmesh.dev/v1alpha1"
TOKENS = GROUP + "/tokens"


def ns(namespace: str, rest: str = "") -> str:
    return f"{GROUP}/namespaces/{namespace}{rest}"


def function(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": name},
        "spec": {"handler": "main:handle"},
    }


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(tmp_path: Path, clock: Clock) -> AsyncIterator[Api]:
    async with running_api(tmp_path, controller=False, clock=clock) as running:
        yield running


async def new_token(api: Api, role: str, **extra: str) -> tuple[str, dict[str, Any]]:
    code, body = await api.raw("POST", TOKENS, {"role": role, **extra})
    assert code == 201, body
    return body.pop("token"), body


# -- roles ----------------------------------------------------------------------------


async def test_a_viewer_reads_but_is_refused_a_deploy_with_the_role_it_needs(api: Api) -> None:
    viewer, _ = await new_token(api, "viewer")
    code, body = await api.raw("GET", ns("default", "/functions"), token=viewer)
    assert code == 200, body

    code, body = await api.raw("POST", ns("default", "/functions"), function("x"), token=viewer)
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["details"] == {"requiredRole": "deployer", "tokenRole": "viewer"}
    assert "'viewer'" in body["message"] and "'deployer'" in body["message"]

    code, body = await api.raw("POST", ns("default", "/functions/x/source"), token=viewer)
    assert code == 403 and body["details"]["requiredRole"] == "deployer", body
    assert api.store.list("Function")[0] == []


async def test_a_deployer_deploys_but_manages_no_tokens(api: Api) -> None:
    deployer, _ = await new_token(api, "deployer")
    code, body = await api.raw("POST", ns("default", "/functions"), function("x"), token=deployer)
    assert code == 201, body
    code, body = await api.raw("POST", TOKENS, {"role": "admin"}, token=deployer)
    assert code == 403 and body["details"] == {"requiredRole": "admin", "tokenRole": "deployer"}
    code, body = await api.raw("GET", TOKENS, token=deployer)
    assert code == 403, body


async def test_an_invoker_may_not_use_the_api(api: Api) -> None:
    invoker, _ = await new_token(api, "invoker")
    code, body = await api.raw("GET", ns("default", "/functions"), token=invoker)
    assert code == 403 and body["details"] == {"requiredRole": "viewer", "tokenRole": "invoker"}


async def test_a_namespace_scoped_deployer_cannot_touch_another_namespace(api: Api) -> None:
    scoped, record = await new_token(api, "deployer", namespace="team-a")
    assert record["namespace"] == "team-a"
    code, body = await api.raw("POST", ns("team-a", "/functions"), function("x"), token=scoped)
    assert code == 201, body
    code, body = await api.call("POST", "/functions", function("y"))  # admin, in default
    assert code == 201, body

    for method, path, payload in (
        ("POST", ns("default", "/functions"), function("z")),
        ("DELETE", ns("default", "/functions/y"), None),
        ("GET", ns("default", "/functions/y"), None),
        ("PUT", ns("default", "/functions/y/traffic"), {"traffic": []}),
        ("POST", ns("default", "/functions/y/source"), None),
    ):
        code, body = await api.raw(method, path, payload, token=scoped)
        assert code == 403, (method, path, body)
        assert "limited to namespace 'team-a'" in body["message"]
    assert api.store.get("Function", "default", "y")  # still there

    code, body = await api.raw("GET", GROUP + "/functions", token=scoped)  # every namespace
    assert code == 200, body
    assert [f["metadata"]["namespace"] for f in body["items"]] == ["team-a"]
    code, body = await api.raw("GET", GROUP + "/functions")  # the admin sees both
    assert sorted(f["metadata"]["namespace"] for f in body["items"]) == ["default", "team-a"]


async def test_only_an_unscoped_admin_manages_tokens(api: Api) -> None:
    scoped_admin, _ = await new_token(api, "admin", namespace="team-a")
    code, body = await api.raw("POST", TOKENS, {"role": "admin"}, token=scoped_admin)
    assert code == 403 and "without --namespace" in body["message"], body


# -- expiry and revocation ----------------------------------------------------------------


async def test_an_expired_token_gets_401(api: Api, clock: Clock) -> None:
    viewer, record = await new_token(api, "viewer", expires="12h")
    code, _ = await api.raw("GET", ns("default", "/functions"), token=viewer)
    assert code == 200
    clock.now += 12 * 3600
    code, body = await api.raw("GET", ns("default", "/functions"), token=viewer)
    assert code == 401, body
    assert "expired" in body["message"] and record["id"] in body["message"]


async def test_a_revoked_token_gets_401(api: Api) -> None:
    deployer, record = await new_token(api, "deployer", name="ci")
    code, body = await api.raw("DELETE", f"{TOKENS}/{record['id']}")
    assert code == 200 and body["revokedAt"], body
    code, body = await api.raw("GET", ns("default", "/functions"), token=deployer)
    assert code == 401 and "revoked" in body["message"], body
    code, body = await api.raw("GET", TOKENS)
    listed = {item["id"]: item for item in body["items"]}
    assert listed[record["id"]]["revokedAt"] and listed[record["id"]]["name"] == "ci"


async def test_unknown_and_missing_tokens_get_401(api: Api) -> None:
    code, body = await api.raw("GET", ns("default", "/functions"), token="fnm_made-up")
    assert code == 401 and "not known" in body["message"]
    code, body = await api.raw("GET", ns("default", "/functions"), token="")
    assert code == 401 and "missing bearer token" in body["message"]


async def test_bad_token_requests_name_the_field(api: Api) -> None:
    code, body = await api.raw(
        "POST", TOKENS, {"role": "root", "expires": "soon", "namespace": "Bad_NS", "x": 1}
    )
    assert code == 422, body
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {"role", "expires", "namespace", "x"}


def test_a_revocation_reaches_another_process_within_the_cache_bound(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    now = Clock(100.0)
    gateway = Tokens(store, monotonic=now)  # another process's table, on the same store
    api = Tokens(SqliteStore(tmp_path / "state.db"))
    secret, grant = api.create("invoker")
    assert gateway.verify(secret) == grant
    api.revoke(grant.id)
    now.now += gateway.ttl - 0.5
    assert gateway.verify(secret) is not None  # the snapshot is still fresh
    now.now += 0.5
    assert gateway.verify(secret) is None
    assert "revoked" in str(gateway.authenticate(secret))


# -- hashes only ----------------------------------------------------------------------------


async def test_only_a_hash_is_stored_and_listing_shows_no_secret(api: Api) -> None:
    secret, record = await new_token(api, "viewer", name="dash")
    stored = api.store.get("Token", SYSTEM_NAMESPACE, record["id"])
    assert stored["spec"]["sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    everything = json.dumps(api.store.list("Token")[0])
    assert secret not in everything
    code, body = await api.raw("GET", TOKENS)
    assert code == 200
    text = json.dumps(body)
    assert secret not in text and stored["spec"]["sha256"] not in text and "sha256" not in text
    await api.raw("GET", ns("default", "/functions"), token=secret)
    code, body = await api.raw("GET", TOKENS)
    used = next(i for i in body["items"] if i["id"] == record["id"])
    assert used["lastUsed"] is not None and used["role"] == "viewer"


# -- /metrics and the route table -----------------------------------------------------------


async def test_metrics_need_a_viewer_token_for_every_namespace(api: Api) -> None:
    code, body = await api.raw("GET", "/metrics", token="")
    assert code == 401, body
    viewer, _ = await new_token(api, "viewer")
    code, _ = await api.raw("GET", "/metrics", token=viewer)
    assert code == 200
    scoped, _ = await new_token(api, "viewer", namespace="team-a")
    code, body = await api.raw("GET", "/metrics", token=scoped)
    assert code == 403, body


def test_every_route_names_the_permission_it_needs() -> None:
    unguarded = [
        r.path
        for r in ROUTES
        if hasattr(r, "endpoint")
        and r.path not in PUBLIC_PATHS
        and not hasattr(r.endpoint, PERMISSION)
    ]
    assert unguarded == []


# -- the gateway: a private function with a token (the real platform) --------------------

ECHO = (
    "def handle(req):\n    return {'authorization': req.headers.get('authorization'), 'ok': True}\n"
)


def create(platform: Platform, role: str, **extra: str) -> tuple[str, dict[str, Any]]:
    reply = http(
        "POST",
        platform.api + TOKENS,
        json.dumps({"role": role, **extra}).encode(),
        {**platform.auth, "Content-Type": "application/json"},
    )
    assert reply.status == 201, reply
    body = reply.json()
    return body.pop("token"), body


@pytest.mark.e2e
def test_an_invoker_token_reaches_a_private_function_through_the_gateway(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "vault"
    folder.mkdir()
    (folder / "fn.yaml").write_text("name: vault\nhandler: main:handle\nvisibility: private\n")
    (folder / "main.py").write_text(ECHO)
    platform.fn("deploy", str(folder), check=True)
    invoker, _ = create(platform, "invoker", namespace="default")
    elsewhere, _ = create(platform, "invoker", namespace="team-b")
    viewer, _ = create(platform, "viewer")

    anonymous = platform.invoke("/fn/vault/")
    assert anonymous.status == 401, anonymous
    assert "private" in anonymous.json()["error"]
    assert "bearer" in anonymous.headers["www-authenticate"].lower()
    refused = platform.invoke("/fn/vault/", headers={"Authorization": f"Bearer {viewer}"})
    assert refused.status == 403 and "'viewer'" in refused.json()["error"], refused
    refused = platform.invoke("/fn/vault/", headers={"Authorization": f"Bearer {elsewhere}"})
    assert refused.status == 403 and "team-b" in refused.json()["error"], refused

    reply = wait_for(
        "the invoker's call to be served",
        lambda: (
            r
            if (
                r := platform.invoke("/fn/vault/", headers={"Authorization": f"Bearer {invoker}"})
            ).status
            == 200
            else None
        ),
    )
    assert reply.json() == {"authorization": None, "ok": True}  # the token stays outside

    done = platform.fn("invoke", "vault", "--auth", check=False)  # the context's admin token
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


@pytest.mark.e2e
def test_a_revoked_token_is_refused_by_the_gateway_at_once(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "vault"
    folder.mkdir()
    (folder / "fn.yaml").write_text("name: vault\nhandler: main:handle\nvisibility: private\n")
    (folder / "main.py").write_text(ECHO)
    platform.fn("deploy", str(folder), check=True)
    invoker, record = create(platform, "invoker")
    auth = {"Authorization": f"Bearer {invoker}"}
    wait_for(
        "the call to be served", lambda: platform.invoke("/fn/vault/", headers=auth).status == 200
    )
    revoked = platform.fn("token", "revoke", record["id"], check=True)
    assert record["id"] in revoked.stdout
    reply = platform.invoke("/fn/vault/", headers=auth)  # one process: at once
    assert reply.status == 401 and "revoked" in reply.json()["error"], reply


async def test_a_scoped_token_reads_only_the_build_logs_of_its_namespace(
    api: Api, tmp_path: Path
) -> None:
    ours, theirs = "b20260101000000-aaaaaa", "b20260101000000-bbbbbb"
    logs = Builder(tmp_path / "build").logs
    logs.mkdir(parents=True, exist_ok=True)
    for build in (ours, theirs):
        (logs / f"{build}.log").write_text(f"log of {build}\n")
    body = function("x")
    body["metadata"]["namespace"] = "team-a"
    body["spec"]["artifact"] = {"digest": "sha256:" + "a" * 64, "build": ours}
    api.store.create(body)
    viewer, _ = await new_token(api, "viewer", namespace="team-a")
    code, text = await api.raw("GET", ns("team-a", f"/functions/x/builds/{ours}/log"), token=viewer)
    assert code == 200 and ours in text
    code, _ = await api.raw("GET", ns("team-a", f"/functions/x/builds/{theirs}/log"), token=viewer)
    assert code == 404
    code, text = await api.raw("GET", ns("team-a", f"/functions/x/builds/{theirs}/log"))
    assert code == 200 and theirs in text  # an unscoped token reads any build's log


@pytest.mark.e2e
def test_a_viewer_taps_without_payloads_headers_or_queries(
    platform: Platform, tmp_path: Path
) -> None:
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "fn.yaml").write_text("name: hello\nhandler: main:handle\n")
    (folder / "main.py").write_text("def handle(req):\n    return 'hi'\n")
    platform.fn("deploy", str(folder), check=True)
    viewer, _ = create(platform, "viewer")
    lines: queue.Queue[bytes] = queue.Queue()
    request = urllib.request.Request(
        platform.api + ns("default", "/functions/hello/tap"),
        headers={"Authorization": f"Bearer {viewer}"},
    )
    stream = urllib.request.urlopen(request, timeout=30)

    def read() -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed under it
            for line in stream:
                lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        seen: list[dict[str, Any]] = []

        def tapped() -> bool:
            platform.invoke("/fn/hello/pay?card=4111", headers={"Authorization": "Basic c2VjcmV0"})
            while not lines.empty():
                event = json.loads(lines.get())
                if event.get("type"):
                    seen.append(event)
            return any(e["type"] == "response-end" for e in seen)

        wait_for("a tapped request", tapped)
    finally:
        stream.close()
        reader.join(10)
    assert all(set(e) <= TAP_FIELDS for e in seen), seen
    assert all(e["path"] == "/pay" for e in seen if e["type"] != "started"), seen
    assert "secret" not in json.dumps(seen) and "4111" not in json.dumps(seen)
