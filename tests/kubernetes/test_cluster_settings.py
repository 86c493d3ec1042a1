"""The components' environment on a cluster: read once, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnmesh.platform.cluster.settings import ApiSettings, ClusterSettings, host_port
from fnmesh.platform.model.errors import ValidationError

ANCHOR = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"


def test_defaults_match_the_chart() -> None:
    settings = ClusterSettings.from_env({"FNMESH_TRUST_ANCHORS": ANCHOR}, port=8012)
    assert settings.listen_port == 8012
    assert settings.platform_namespace == "fnmesh-system"
    assert settings.watch_namespaces == ()
    assert settings.token_file == Path("/var/run/secrets/fnmesh.dev/identity/token")
    assert host_port(settings.addresses.autoscaler_url) == (
        "fnmesh-autoscaler.fnmesh-system.svc",
        8090,
    )


def test_the_environment_is_read() -> None:
    settings = ClusterSettings.from_env(
        {
            "FNMESH_TRUST_ANCHORS": ANCHOR,
            "FNMESH_PLATFORM_NAMESPACE": "platform",
            "FNMESH_WATCH_NAMESPACES": "team-a, team-b,,",
            "FNMESH_TRUST_DOMAIN": "corp.local",
            "FNMESH_SPLIT_API_VERSION": "split.smi-spec.io/v1alpha2",
            "FNMESH_ACTIVATOR_URL": "https://act.platform.svc:9012/",
            "FNMESH_LISTEN_PORT": "9000",
            "FNMESH_REQUEST_TIMEOUT": "2.5",
        },
        port=8080,
    )
    assert settings.watch_namespaces == ("team-a", "team-b")
    assert settings.addresses.activator_url == "https://act.platform.svc:9012"
    assert (settings.listen_port, settings.request_timeout) == (9000, 2.5)
    assert settings.trust_domain == "corp.local"


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        ClusterSettings.from_env(
            {
                "FNMESH_STORE": "sqlite",
                "FNMESH_WATCH_NAMESPACES": "Team_A",
                "FNMESH_SPLIT_API_VERSION": "split.smi-spec.io/v1",
                "FNMESH_AUTOSCALER_URL": "http://scaler:8090",
                "FNMESH_IDENTITY_URL": "https://api",
                "FNMESH_LISTEN_PORT": "http",
                "FNMESH_REQUEST_TIMEOUT": "0",
            },
            port=8080,
        )
    named = {error.path for error in refused.value.errors}
    assert named == {
        "FNMESH_STORE",
        "FNMESH_WATCH_NAMESPACES",
        "FNMESH_SPLIT_API_VERSION",
        "FNMESH_AUTOSCALER_URL",
        "FNMESH_IDENTITY_URL",
        "FNMESH_LISTEN_PORT",
        "FNMESH_REQUEST_TIMEOUT",
        "FNMESH_TRUST_ANCHORS",
    }
    assert "https:// host:port" in str(refused.value)


def test_the_api_needs_its_token_but_not_the_anchors() -> None:
    with pytest.raises(ValidationError, match="FNMESH_API_TOKEN: is required"):
        ApiSettings.from_env({})
    settings = ApiSettings.from_env(
        {
            "FNMESH_API_TOKEN": "a-long-enough-token",
            "FNMESH_AUTOSCALER_SERVICE_ACCOUNT": "scaler",
            "FNMESH_DATA_DIR": "/data",
        }
    )
    assert settings.accounts.by_component() == {
        "gateway": "fnmesh-gateway",
        "activator": "fnmesh-activator",
        "autoscaler": "scaler",
        "telemetry": "fnmesh-telemetry",
        "operator": "fnmesh-operator",
    }
    assert (settings.data_dir, settings.cluster.listen_port) == (Path("/data"), 8081)
    with pytest.raises(ValidationError, match="FNMESH_DATA_DIR: must be an absolute path"):
        ApiSettings.from_env({"FNMESH_API_TOKEN": "a-long-enough-token", "FNMESH_DATA_DIR": "x"})


def test_the_artifact_service_is_https_only() -> None:
    settings = ApiSettings.from_env({"FNMESH_API_TOKEN": "a-long-enough-token"})
    assert settings.artifact_port == 8444
    assert settings.cluster.addresses.artifact_url.startswith("https://")
    with pytest.raises(ValidationError, match="FNMESH_ARTIFACT_URL: must be https:// host:port"):
        ClusterSettings.from_env(
            {"FNMESH_TRUST_ANCHORS": ANCHOR, "FNMESH_ARTIFACT_URL": "http://fnmesh-api:8081"},
            port=8080,
        )
