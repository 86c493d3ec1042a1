"""The API process on a cluster, against an in-memory Kubernetes API over real HTTP.

The real Starlette app (``platform.api``) is served by uvicorn on a socket, its store is
the cluster; replicas fetch artifacts with projected tokens the cluster reviews, and
components get their certificates from the identity endpoint over real TLS.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import hashlib
import io
import json
import os
import signal
import ssl
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import kubernetes
import pytest
from kmockapi import ApiThread, KubeApi, configuration
from support.e2e import wait_for

from fnmesh.functions import fetch
from fnmesh.platform.build import pack
from fnmesh.platform.cluster.api import ClusterApi, adopt_token
from fnmesh.platform.cluster.certificates import ComponentIdentity
from fnmesh.platform.cluster.settings import Addresses, ApiSettings, ClusterSettings
from fnmesh.platform.cluster.stores import ClusterStore
from fnmesh.platform.mesh.identity import (
    CertificateAuthority,
    HttpIdentityEndpoint,
    IdentityClient,
    IdentityRefused,
    component_identity,
)
from fnmesh.platform.mesh.identity.csr import key_to_pem
from fnmesh.platform.shell import listen
from fnmesh.platform.store.kubernetes import KubeClient

REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
AUDIENCE = "identity.fnmesh.dev"
ADMIN = "admin-token-from-the-chart-secret"
FUNCTIONS = "/apis/fnmesh.dev/v1alpha1/namespaces/default/functions"
# What the fake API server knows: token -> (user, audiences it is bound to)
TOKENS = {
    "hello-token": ("system:serviceaccount:default:hello", [AUDIENCE]),
    "other-token": ("system:serviceaccount:default:other", [AUDIENCE]),
    "hello-api-token": ("system:serviceaccount:default:hello", ["https://kubernetes.default.svc"]),
    "gateway-token": ("system:serviceaccount:fnmesh-system:fnmesh-gateway", [AUDIENCE]),
}


def answer(request: kmock.Request) -> dict[str, Any]:
    spec = request.data["spec"]
    known = TOKENS.get(spec["token"])
    status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
    if known is not None:
        user, bound = known
        common = [a for a in spec.get("audiences") or bound if a in bound]
        if common:
            status = {"authenticated": True, "user": {"username": user}, "audiences": common}
        else:
            status = {"authenticated": False, "error": "token audiences are invalid"}
    return {**request.data, "status": status}


def client_for(url: str, component: str | None = "api") -> KubeClient:
    return KubeClient(kubernetes.client.ApiClient(configuration(url, component)))


def authority_files(folder: Path) -> CertificateAuthority:
    """A CA (anchor and intermediate issuer) written as the identity Secret holds it."""
    authority = CertificateAuthority.create(datetime.datetime.now(datetime.UTC))
    folder.mkdir()
    (folder / "ca.crt").write_text(authority.anchor.pem)
    (folder / "issuer.crt").write_text(authority.issuer.pem)
    (folder / "issuer.key").write_text(key_to_pem(authority.issuer.key))
    return authority


@pytest.fixture
def cluster() -> Iterator[ApiThread]:
    api = KubeApi()
    api["post " + REVIEWS] << answer
    with ApiThread(api, namespaces=("default", "fnmesh-system")) as thread:
        yield thread


class Running:
    def __init__(
        self, api: ClusterApi, url: str, artifacts: str, authority: CertificateAuthority
    ) -> None:
        self.api = api
        self.url = url
        self.artifacts = artifacts  # the artifact service, over TLS only
        self.authority = authority
        self.admin = {"Authorization": f"Bearer {ADMIN}"}

    def tls(self) -> ssl.SSLContext:
        """Trusts the platform's anchor; pass ``server_hostname=ARTIFACT_SERVER``."""
        return ssl.create_default_context(cadata=self.authority.trust_anchors_pem)


ARTIFACT_SERVER = component_identity("identity")  # the certificate the artifact port shows


@pytest.fixture
async def platform(cluster: ApiThread, tmp_path: Path) -> AsyncIterator[Running]:
    authority = authority_files(tmp_path / "ca")
    settings = ApiSettings(
        cluster=ClusterSettings(listen_host="127.0.0.1", listen_port=0),
        identity_port=0,
        data_dir=tmp_path / "data",
        api_token=ADMIN,
        ca_dir=tmp_path / "ca",
    )
    api = ClusterApi(settings, client_for(cluster.url))
    sock, artifact_sock = listen("127.0.0.1", 0), listen("127.0.0.1", 0)
    await api.start(sock, artifact_sock)
    try:
        yield Running(
            api,
            f"http://127.0.0.1:{sock.getsockname()[1]}",
            f"https://127.0.0.1:{artifact_sock.getsockname()[1]}",
            authority,
        )
    finally:
        await api.stop()


def hello(handler: str = "main:handle") -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {"handler": handler},
    }


# -- the REST API on the cluster's store ----------------------------------------------------


async def test_functions_are_kept_in_the_cluster(cluster: ApiThread, platform: Running) -> None:
    async with aiohttp.ClientSession(platform.url) as http:
        async with http.get("/healthz") as response:
            assert response.status == 200
        async with http.get(FUNCTIONS) as response:
            assert response.status == 401
        async with http.post(FUNCTIONS, json=hello(), headers=platform.admin) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
        (stored,) = cluster.objects("fnmesh.dev/v1alpha1/functions", "default")
        assert created["metadata"]["uid"] == stored["metadata"]["uid"]
        assert stored["spec"]["handler"] == "main:handle"

        async with http.get(f"{FUNCTIONS}/hello", headers=platform.admin) as response:
            assert (await response.json())["metadata"]["uid"] == stored["metadata"]["uid"]
        async with http.get(FUNCTIONS, headers=platform.admin) as response:
            listed = await response.json()
        assert (listed["kind"], [i["metadata"]["name"] for i in listed["items"]]) == (
            "FunctionList",
            ["hello"],
        )
        all_functions = "/apis/fnmesh.dev/v1alpha1/functions"
        async with http.get(all_functions, headers=platform.admin) as response:
            assert [i["metadata"]["name"] for i in (await response.json())["items"]] == ["hello"]

        changed = {**hello("main:other"), "metadata": created["metadata"]}
        async with http.put(f"{FUNCTIONS}/hello", json=changed, headers=platform.admin) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["metadata"]["generation"] == 2
        async with http.put(f"{FUNCTIONS}/hello", json=changed, headers=platform.admin) as response:
            assert response.status == 409  # a stale resourceVersion

        async with http.delete(f"{FUNCTIONS}/hello", headers=platform.admin) as response:
            assert response.status == 200
            assert (await response.json())["metadata"]["name"] == "hello"
        assert cluster.names("fnmesh.dev/v1alpha1/functions") == set()
        async with http.get(f"{FUNCTIONS}/hello", headers=platform.admin) as response:
            body = await response.json()
        assert (response.status, body["reason"]) == (404, "NotFound")


async def test_the_admin_token_is_kept_as_its_hash(cluster: ApiThread, platform: Running) -> None:
    (token,) = cluster.objects("fnmesh.dev/v1alpha1/tokens", "fnmesh-system")
    assert token["metadata"]["name"] == "admin"
    assert token["spec"]["sha256"] == hashlib.sha256(ADMIN.encode()).hexdigest()
    assert ADMIN not in json.dumps(token)
    adopt_token(platform.api.store, "admin", ADMIN)  # again: nothing changes
    (again,) = cluster.objects("fnmesh.dev/v1alpha1/tokens", "fnmesh-system")
    assert again["metadata"]["resourceVersion"] == token["metadata"]["resourceVersion"]


def tokens_elsewhere(cluster: ApiThread) -> None:
    """Tokens follow the platform's namespace: the API's view stays 'fnmesh-system'."""
    # the chart would run in "platform" then; the test stands in for that release
    store = ClusterStore(client_for(cluster.url, None), platform_namespace="platform")
    adopt_token(store, "cli", "a-token-of-the-cli-1234")
    assert cluster.names("fnmesh.dev/v1alpha1/tokens", "platform") == {"cli"}
    assert cluster.names("fnmesh.dev/v1alpha1/tokens", "fnmesh-system") == set()
    (seen,), _ = store.list("Token", "fnmesh-system")
    assert seen["metadata"]["namespace"] == "fnmesh-system"
    store.close()


def test_tokens_live_in_the_platforms_namespace() -> None:
    with ApiThread(namespaces=("platform",)) as cluster:
        tokens_elsewhere(cluster)


# -- source in, artifact out ---------------------------------------------------------------


def bundle(tmp_path: Path) -> bytes:
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "fn.yaml").write_text("name: hello\nhandler: main:handle\n")
    (folder / "main.py").write_text("def handle(req):\n    return 'hi'\n")
    return pack(folder)


async def deploy(platform: Running, data: bytes) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(platform.url) as http,
        http.post(
            f"{FUNCTIONS}/hello/source",
            data=data,
            headers={**platform.admin, "Content-Type": "application/gzip"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        lines = [json.loads(line) for line in (await response.text()).splitlines()]
    result = lines[-1]
    assert result["event"] == "result" and result["ok"], lines
    return dict(result)


def revision_for(digest: str, account: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "function": "hello",
        "handler": "main:handle",
        "artifact": {"digest": digest},
    }
    if account:
        spec["serviceAccount"] = account
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Revision",
        "metadata": {"name": "hello-00001", "labels": {"fnmesh.dev/function": "hello"}},
        "spec": spec,
    }


async def fetch_as(tmp_path: Path, platform: Running, token: str, digest: str, out: str) -> int:
    (tmp_path / f"{out}.token").write_text(token)
    argv = [
        "--url", f"{platform.artifacts}/artifacts/{digest}", "--digest", digest,
        "--dest", str(tmp_path / out / "source"), "--token-file", str(tmp_path / f"{out}.token"),
        "--attempts", "1", "--server-identity", ARTIFACT_SERVER,
    ]  # fmt: skip
    env = {"FNMESH_TRUST_ANCHORS": platform.authority.trust_anchors_pem}
    return await asyncio.to_thread(fetch.main, argv, env)


async def test_a_replica_fetches_its_revisions_artifact(
    cluster: ApiThread, platform: Running, tmp_path: Path
) -> None:
    result = await deploy(platform, bundle(tmp_path))
    digest = result["digest"]
    (stored,) = cluster.objects("fnmesh.dev/v1alpha1/functions", "default")
    assert stored["spec"]["artifact"]["digest"] == digest
    # no revision runs it yet: nobody may fetch it
    assert await fetch_as(tmp_path, platform, "hello-token", digest, "early") == fetch.EXIT_DOWNLOAD
    # the operator stamps the revision; its replicas run as the function's account
    cluster.request(
        "POST", "/apis/fnmesh.dev/v1alpha1/namespaces/default/revisions", revision_for(digest)
    )

    assert await fetch_as(tmp_path, platform, "hello-token", digest, "ok") == fetch.EXIT_OK
    assert (tmp_path / "ok" / "source" / "main.py").read_text().startswith("def handle")
    assert await fetch_as(tmp_path, platform, "other-token", digest, "other") == fetch.EXIT_DOWNLOAD
    assert not (tmp_path / "other").exists()
    code = await fetch_as(tmp_path, platform, "hello-api-token", digest, "api")
    assert code == fetch.EXIT_DOWNLOAD

    tls = {"ssl": platform.tls(), "server_hostname": ARTIFACT_SERVER}
    async with aiohttp.ClientSession(platform.artifacts) as http:
        url = f"/artifacts/{digest}"
        async with http.get(
            url, headers={"Authorization": "Bearer hello-token"}, **tls
        ) as response:
            assert response.headers["content-type"] == "application/gzip"
            data = gzip.decompress(await response.read())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert sorted(tar.getnames()) == ["fn.yaml", "main.py"]
        for headers, status, reason in [
            (platform.admin, 401, "not accepted by the cluster"),  # an API token is no pod's
            ({"Authorization": "Bearer other-token"}, 403, "runs no revision"),
            ({}, 401, "projected identity token"),
        ]:
            async with http.get(url, headers=headers, **tls) as response:
                body = await response.json()
                assert (response.status, body["kind"]) == (status, "Status")
                assert reason in body["message"]
        missing = "/artifacts/sha256:" + "9" * 64
        async with http.get(
            missing, headers={"Authorization": "Bearer hello-token"}, **tls
        ) as response:
            assert response.status == 403  # no revision runs it, whether it exists or not
        async with http.get("/artifacts/md5:x", headers=platform.admin, **tls) as response:
            assert response.status == 400
    # the plaintext API port does not serve artifacts at all
    async with (
        aiohttp.ClientSession(platform.url) as http,
        http.get(url, headers={"Authorization": "Bearer hello-token"}) as response,
    ):
        assert response.status in (401, 404), await response.text()
        assert response.headers.get("content-type") != "application/gzip"


async def test_an_environment_is_served_to_the_revision_using_it(
    cluster: ApiThread, platform: Running, tmp_path: Path
) -> None:
    key = "e" * 64
    site = platform.api.builder.envs.path(key)
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (site / "bin").mkdir()
    (site / "bin" / "tool").write_text("#!/bin/sh\n")
    (site / "bin" / "tool").chmod(0o755)
    (site / "link.py").symlink_to("pkg/__init__.py")
    body = revision_for("sha256:" + "1" * 64)
    body["spec"]["artifact"]["environment"] = key
    cluster.request("POST", "/apis/fnmesh.dev/v1alpha1/namespaces/default/revisions", body)
    tls = {"ssl": platform.tls(), "server_hostname": ARTIFACT_SERVER}
    async with aiohttp.ClientSession(platform.artifacts) as http:
        headers = {"Authorization": "Bearer hello-token"}
        async with http.get(f"/environments/{key}", headers=headers, **tls) as response:
            assert response.status == 200
            data = await response.read()
        async with http.get(f"/environments/{'f' * 64}", headers=headers, **tls) as response:
            assert response.status == 403
    dest = tmp_path / "site"
    fetch.install(data, fetch.Fetch("x", dest, fetch.ENVIRONMENT_LIMITS))
    assert (dest / "pkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert os.access(dest / "bin" / "tool", os.X_OK)
    assert (dest / "link.py").is_symlink()


# -- the identity endpoint ----------------------------------------------------------------


def component_settings(platform: Running, token_file: Path) -> ClusterSettings:
    assert platform.api.identity is not None
    url = f"https://127.0.0.1:{platform.api.identity.port}"
    return ClusterSettings(
        trust_anchors=platform.authority.trust_anchors_pem,
        token_file=token_file,
        addresses=Addresses(identity_url=url),
    )


async def test_components_get_their_own_identity_and_nobody_else_does(
    platform: Running, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("gateway-token\n")
    stop = asyncio.Event()
    gateway = ComponentIdentity("gateway", component_settings(platform, token))
    try:
        assert await gateway.obtain(stop)
        issued = gateway.client.certificate
        assert issued is not None and issued.identity == component_identity("gateway")
    finally:
        await gateway.close()
    activator = ComponentIdentity("activator", component_settings(platform, token))
    try:
        with pytest.raises(IdentityRefused, match=r"activator's.*fnmesh-gateway"):
            await activator.obtain(stop)
    finally:
        await activator.close()
    token.write_text("hello-token")
    api = ComponentIdentity("api", component_settings(platform, token))
    try:
        with pytest.raises(IdentityRefused, match="belongs to the platform itself"):
            await api.obtain(stop)
    finally:
        await api.close()


async def test_a_workload_gets_its_service_accounts_identity(platform: Running) -> None:
    assert platform.api.identity is not None
    endpoint = HttpIdentityEndpoint(f"https://127.0.0.1:{platform.api.identity.port}")
    anchors = platform.authority.trust_anchors_pem
    try:
        own = "hello.default.serviceaccount.identity.fnmesh.local"
        client = IdentityClient(
            own, trust_anchors_pem=anchors, endpoint=endpoint, credential="hello-token"
        )
        await client.start()
        await client.close()
        assert client.certificate is not None and client.certificate.identity == own
        other = "other.default.serviceaccount.identity.fnmesh.local"
        thief = IdentityClient(
            other, trust_anchors_pem=anchors, endpoint=endpoint, credential="hello-token"
        )
        with pytest.raises(
            IdentityRefused, match="belongs to 'system:serviceaccount:default:hello'"
        ):
            await thief.start()
    finally:
        await endpoint.close()


# -- fn up --backend kubernetes --------------------------------------------------------------


def test_fn_up_serves_the_clusters_api_here(cluster: ApiThread, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        # fn up runs as the person at the keyboard: the cluster's admin
        "KUBECONFIG": str(cluster.kubeconfig(tmp_path / "kubeconfig")),
        "FNMESH_HOME": str(home),
    }
    command = [sys.executable, "-m", "fnmesh.platform.cli", "up", "--backend", "kubernetes"]
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [*command, "--api-port", "0", "--gateway-port", "18080"], env=env, stdout=log, stderr=log
    )
    try:
        context = wait_for(
            "the context",
            lambda: json.loads((home / "context.json").read_text()),
            timeout=30,
        )
        assert context["gateway"] == "http://127.0.0.1:18080"
        assert (home / "context.json").stat().st_mode & 0o777 == 0o600
        listed = subprocess.run(
            [sys.executable, "-m", "fnmesh.platform.cli", "list", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        (token,) = cluster.objects("fnmesh.dev/v1alpha1/tokens", "fnmesh-system")
        assert token["metadata"]["name"].startswith("cli-")
        assert token["spec"]["sha256"] == hashlib.sha256(context["token"].encode()).hexdigest()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        log.close()
    assert code == 0, (tmp_path / "up.log").read_text()


async def test_fn_logs_reads_the_replicas_pods(cluster: ApiThread, platform: Running) -> None:
    pods = "/api/v1/namespaces/default/pods"
    log = b"2026-11-25T21:20:01.5Z started\n2026-11-25T21:20:02Z handled /\n"
    cluster.api[f"get {pods}/hello-00001-x7k2p/log"] << log
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello-00001-x7k2p"}}
    pod["metadata"]["labels"] = {"fnmesh.dev/function": "hello"}
    cluster.request("POST", pods, pod)
    async with aiohttp.ClientSession(platform.url) as http:
        async with http.post(FUNCTIONS, json=hello(), headers=platform.admin) as response:
            assert response.status == 201
        logs = f"{FUNCTIONS}/hello/logs?tail=1"
        async with http.get(logs, headers=platform.admin) as response:
            assert response.status == 200
            text = await response.text()
    assert text == "2026-11-25T21:20:02.000Z hello-00001-x7k2p stdout: handled /\n"
