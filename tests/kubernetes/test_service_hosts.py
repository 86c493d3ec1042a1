"""Service names from a hosts file (FNMESH_SERVICE_HOSTS), for a machine without cluster DNS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fnmesh.platform.cluster.endpoints import with_service_endpoints
from fnmesh.platform.cluster.service_hosts import ServiceHosts, parse_hosts
from fnmesh.platform.cluster.settings import ClusterSettings
from fnmesh.platform.model.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("127.9.0.1 a.ns.svc a.ns.svc.cluster.local\n", {"a.ns.svc": "127.9.0.1",
                                                         "a.ns.svc.cluster.local": "127.9.0.1"}),
        ("# comment\n\n127.9.0.1 a.ns.svc # trailing\n", {"a.ns.svc": "127.9.0.1"}),
        ("127.9.0.1 A.NS.svc.\n", {"a.ns.svc": "127.9.0.1"}),
        ("127.9.0.1 a.ns.svc\n127.9.0.2 a.ns.svc\n", {"a.ns.svc": "127.9.0.1"}),  # first wins
        ("::1 six.ns.svc\n", {"six.ns.svc": "::1"}),
        ("not-an-address a.ns.svc\n127.9.0.1\n", {}),
    ],
)  # fmt: skip
def test_hosts_lines(text: str, names: dict[str, str]) -> None:
    assert parse_hosts(text) == names


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    hosts = ServiceHosts(path)
    assert hosts.address("hello-00001.default.svc") == "hello-00001.default.svc"  # no file: DNS
    path.write_text("127.9.0.1 hello-00001.default.svc\n")
    assert hosts.address("hello-00001.default.svc") == "127.9.0.1"
    assert hosts.address("other.default.svc") == "other.default.svc"
    replaced = tmp_path / "hosts.new"
    replaced.write_text("127.9.0.2 hello-00001.default.svc\n")
    os.replace(replaced, path)
    assert hosts.address("hello-00001.default.svc") == "127.9.0.2"
    assert ServiceHosts(None).address("hello-00001.default.svc") == "hello-00001.default.svc"


def test_ready_replicas_are_at_the_services_listed_address(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("127.9.0.7 hello-00001.default.svc\n")
    revision = {
        "metadata": {"name": "hello-00001", "namespace": "default"},
        "status": {"readyReplicas": 2},
    }
    seen = with_service_endpoints(revision, ServiceHosts(tmp_path / "hosts"))
    assert [r["address"] for r in seen["status"]["replicas"]] == ["127.9.0.7:80"] * 2
    unlisted = with_service_endpoints(revision, ServiceHosts(tmp_path / "none"))
    assert unlisted["status"]["replicas"][0]["address"] == "hello-00001.default.svc:80"


def test_the_setting_is_an_absolute_path_or_unset() -> None:
    anchors = "-----BEGIN CERTIFICATE-----\nx\n"
    env = {"FNMESH_TRUST_ANCHORS": anchors}
    assert ClusterSettings.from_env(env, port=1).service_hosts is None
    env["FNMESH_SERVICE_HOSTS"] = "/run/hosts"
    assert ClusterSettings.from_env(env, port=1).service_hosts == Path("/run/hosts")
    env["FNMESH_SERVICE_HOSTS"] = "hosts"
    with pytest.raises(ValidationError, match=r"FNMESH_SERVICE_HOSTS.*absolute path"):
        ClusterSettings.from_env(env, port=1)
