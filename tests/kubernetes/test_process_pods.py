"""The process kubelet's reading of the builders' pod spec (tests/support/pods.py).

The parity suite runs the operator's Deployments as local processes; these tables pin
how each container of ``make_deployment`` becomes one, so a change in the builders that
the harness would silently mistranslate fails here first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.pods import (
    Pod,
    PodSpecError,
    Probe,
    container_process,
    mount_path,
    pod_address,
    pod_files,
    target_port,
    volume_folders,
)

from fnmesh.platform.model import Artifact, ObjectMeta, Revision, RevisionSpec
from fnmesh.platform.runtime.kubernetes import ClusterConfig
from fnmesh.platform.runtime.kubernetes.builders import (
    ADMIN_PORT,
    INBOUND_PORT,
    make_deployment,
    make_service,
)

DIGEST = "sha256:" + "ab" * 32
UID = "7f1c9a52-0000-4000-8000-000000000002"
ROOT = Path("/pods/p1")
POD = Pod(
    name="hello-00001-abc",
    namespace="team-a",
    address="127.50.0.9",
    labels={"fnmesh.dev/revision": "hello-00001"},
    annotations={"fnmesh.dev/policy": '{"public": true}'},
    service_account="hello",
)
CONFIG = ClusterConfig(artifact_url="https://127.0.0.1:9444", identity_url="https://127.0.0.1:9443")


def pod_spec(**spec: Any) -> dict[str, Any]:
    revision = Revision(
        metadata=ObjectMeta(name="hello-00001", namespace="team-a", uid=UID),
        spec=RevisionSpec(
            function="hello",
            handler="main:handle",
            artifact=Artifact(digest=DIGEST),
            env={"GREETING": "hi"},
            **spec,
        ),
    )
    found: dict[str, Any] = make_deployment(revision, CONFIG)["spec"]["template"]["spec"]
    return found


def process(name: str, **secrets: str) -> Any:
    spec = pod_spec()
    containers = spec["containers"] + spec["initContainers"]
    (container,) = [c for c in containers if c["name"] == name]
    return container_process(
        container,
        POD,
        volume_folders(spec, ROOT),
        secret=lambda n, k: secrets.get(f"{n}/{k}"),
        python="/venv/python",
    )


def test_the_fetch_writes_into_the_artifact_volume_with_the_projected_token() -> None:
    fetch = process("fetch")
    argv = list(fetch.argv)
    assert argv[:3] == ["/venv/python", "-m", "fnmesh.functions.fetch"]
    assert argv[argv.index("--dest") + 1] == "/pods/p1/volumes/artifact/source"
    assert argv[argv.index("--token-file") + 1] == "/pods/p1/volumes/identity-token/token"
    assert argv[argv.index("--url") + 1] == f"https://127.0.0.1:9444/artifacts/{DIGEST}"  # a URL
    assert fetch.env["TMPDIR"] == "/pods/p1/volumes/function-tmp"
    assert fetch.ready_probe is None


def test_the_runtime_serves_on_the_pods_address() -> None:
    runtime = process("function")
    argv = list(runtime.argv)
    assert argv[argv.index("--host") + 1] == "127.50.0.9"
    assert argv[argv.index("--port") + 1] == "8080"
    assert argv[argv.index("--source") + 1] == "/pods/p1/volumes/artifact/source"
    assert runtime.env["GREETING"] == "hi" and runtime.env["PORT"] == "8080"


def test_the_proxy_listens_on_the_pods_address_and_dials_its_runtime_there() -> None:
    proxy = process("fnmesh-proxy")
    env = proxy.env
    assert env["FNMESH_PROXY_INBOUND_HOST"] == "127.50.0.9"  # not 0.0.0.0: pods share a host
    assert env["FNMESH_PROXY_ADMIN_HOST"] == "127.50.0.9"
    assert env["FNMESH_PROXY_UPSTREAM"] == "127.50.0.9:8080"
    assert env["FNMESH_PROXY_IDENTITY_URL"] == "https://127.0.0.1:9443"  # URLs left alone
    assert env["FNMESH_PROXY_BOOTSTRAP_TOKEN_FILE"] == "/pods/p1/volumes/identity-token/token"
    assert env["FNMESH_PROXY_POLICY_FILE"] == "/pods/p1/volumes/policy/policy.json"
    assert env["FNMESH_PROXY_REPLICA"] == "hello-00001-abc"  # fieldRef metadata.name
    assert proxy.ready_probe == Probe(ADMIN_PORT, "/ready")


def test_the_pods_files_are_the_policy_and_a_token_for_the_identity_audience() -> None:
    spec = pod_spec()
    asked: list[tuple[str, int]] = []

    def token(audience: str, seconds: int) -> str:
        asked.append((audience, seconds))
        return "minted"

    files = pod_files(spec, POD, volume_folders(spec, ROOT), token=token, secret_data=dict().get)
    assert files.files[ROOT / "volumes/policy/policy.json"] == (b'{"public": true}', 0o444)
    assert files.files[ROOT / "volumes/identity-token/token"] == (b"minted", 0o400)
    assert asked == [("identity.fnmesh.dev", 3600)]
    assert ROOT / "volumes/artifact" in files.folders


def test_secrets_are_files_and_variables() -> None:
    spec = pod_spec(secrets=("db",), secret_env={"DB_PASSWORD": "db/password"})
    data = {"db": {"password": b"s3cret"}}
    files = pod_files(spec, POD, volume_folders(spec, ROOT), token=lambda a, s: "t",
                      secret_data=data.get)  # fmt: skip
    assert files.files[ROOT / "volumes/secret-db/password"] == (b"s3cret", 0o440)
    runtime = next(c for c in spec["containers"] if c["name"] == "function")
    values = {"db/password": "s3cret"}
    found = container_process(runtime, POD, volume_folders(spec, ROOT),
                              secret=lambda n, k: values.get(f"{n}/{k}"))  # fmt: skip
    assert found.env["DB_PASSWORD"] == "s3cret"
    with pytest.raises(PodSpecError, match="secret 'db' of volume"):
        pod_files(spec, POD, volume_folders(spec, ROOT), token=lambda a, s: "t",
                  secret_data=dict().get)  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", "127.50.0.9"),
        ("0.0.0.0", "127.50.0.9"),
        ("127.0.0.1:8080", "127.50.0.9:8080"),
        ("https://127.0.0.1:9443", "https://127.0.0.1:9443"),
        ("10.0.0.1:80", "10.0.0.1:80"),
        ("8080", "8080"),
    ],
)
def test_pod_addresses(value: str, expected: str) -> None:
    assert pod_address(value, "127.50.0.9") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/fnmesh/artifact/source", "/v/artifact/source"),
        ("/fnmesh/artifact", "/v/artifact"),
        ("/fnmesh/artifactual", "/fnmesh/artifactual"),
        ("/tmp/x", "/v/tmp/x"),
        ("relative", "relative"),
    ],
)
def test_mount_paths(value: str, expected: str) -> None:
    mounts = [("/fnmesh/artifact", Path("/v/artifact")), ("/tmp", Path("/v/tmp"))]
    assert mount_path(value, mounts) == expected


def test_a_services_target_port_by_number_or_name() -> None:
    spec = pod_spec()
    (port,) = make_service(
        Revision(
            metadata=ObjectMeta(name="hello-00001", namespace="team-a", uid=UID),
            spec=RevisionSpec(function="hello", handler="m:h", artifact=Artifact(digest=DIGEST)),
        )
    )["spec"]["ports"]
    assert target_port(spec, port) == INBOUND_PORT
    assert target_port(spec, {"port": 80, "targetPort": "admin"}) == ADMIN_PORT
    with pytest.raises(PodSpecError, match="targetPort 'nope'"):
        target_port(spec, {"port": 80, "targetPort": "nope"})
