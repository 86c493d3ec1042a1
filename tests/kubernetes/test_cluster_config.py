"""ClusterConfig: defaults, reading FNMESH_* variables, and every bad one reported."""

from __future__ import annotations

import dataclasses

import pytest

from fnmesh.platform.model import ValidationError
from fnmesh.platform.runtime.kubernetes.config import ClusterConfig, env_name


def test_defaults_are_valid() -> None:
    assert ClusterConfig().problems() == []
    assert ClusterConfig.from_env({}) == ClusterConfig()
    assert ClusterConfig().inbound_tls is True


def test_every_field_has_a_variable() -> None:
    names = [env_name(f.name) for f in dataclasses.fields(ClusterConfig)]
    assert "FNMESH_RUNTIME_IMAGE" in names
    assert "FNMESH_SPLIT_API_VERSION" in names
    assert len(set(names)) == len(names)


def test_variables_override_defaults() -> None:
    config = ClusterConfig.from_env(
        {
            "FNMESH_RUNTIME_IMAGE": "reg.example/fnmesh/runtime:1.2",
            "FNMESH_PROXY_IMAGE": "reg.example/fnmesh/platform:1.2",
            "FNMESH_PULL_POLICY": "Always",
            "FNMESH_PLATFORM_NAMESPACE": "platform",
            "FNMESH_API_URL": "http://fnmesh-api.platform.svc:8081/",
            "FNMESH_MESH": "linkerd",
            "FNMESH_SPLIT_API_VERSION": "split.smi-spec.io/v1alpha2",
            "FNMESH_RUN_AS_USER": "1001",
            "FNMESH_GATEWAY_DOMAIN": "fn.example.com",  # another component's: ignored
            "HOME": "/root",
        }
    )
    assert config.runtime_image == "reg.example/fnmesh/runtime:1.2"
    assert config.pull_policy == "Always"
    assert config.platform_namespace == "platform"
    assert config.api_url == "http://fnmesh-api.platform.svc:8081"  # trailing '/' dropped
    assert config.mesh == "linkerd"
    assert config.inbound_tls is False
    assert config.split_api_version == "split.smi-spec.io/v1alpha2"
    assert config.run_as_user == 1001
    assert config.telemetry_url == ClusterConfig().telemetry_url


def test_every_bad_variable_is_named() -> None:
    with pytest.raises(ValidationError) as caught:
        ClusterConfig.from_env(
            {
                "FNMESH_PULL_POLICY": "Sometimes",
                "FNMESH_PLATFORM_NAMESPACE": "Platform_NS",
                "FNMESH_IDENTITY_URL": "fnmesh-api:8443",
                "FNMESH_MESH": "istio",
                "FNMESH_SPLIT_API_VERSION": "split.smi-spec.io/v1alpha1",
                "FNMESH_RUNTIME_CPU": "lots",
                "FNMESH_RUN_AS_USER": "0",
                "FNMESH_TRUST_ANCHORS": "not a certificate",
                "FNMESH_PROXY_IMAGE": "",
            }
        )
    errors = {e.path: e.message for e in caught.value.errors}
    assert set(errors) == {
        "FNMESH_PULL_POLICY",
        "FNMESH_PLATFORM_NAMESPACE",
        "FNMESH_IDENTITY_URL",
        "FNMESH_MESH",
        "FNMESH_SPLIT_API_VERSION",
        "FNMESH_RUNTIME_CPU",
        "FNMESH_RUN_AS_USER",
        "FNMESH_TRUST_ANCHORS",
        "FNMESH_PROXY_IMAGE",
    }
    assert "Always, IfNotPresent, Never" in errors["FNMESH_PULL_POLICY"]
    assert "http:// or https://" in errors["FNMESH_IDENTITY_URL"]
    assert "not root" in errors["FNMESH_RUN_AS_USER"]
    assert "the operator's environment is invalid" in str(caught.value)


def test_default_runtime_limits_must_be_quantities() -> None:
    config = ClusterConfig(runtime_memory_limit="256m", runtime_cpu_limit="lots")
    found = dict(config.problems())
    assert "write 256Mi" in found["runtime_memory_limit"]
    assert "'500m'" in found["runtime_cpu_limit"]


def test_the_artifact_service_is_reached_over_https_only() -> None:
    assert ClusterConfig().artifact_url.startswith("https://")
    found = dict(ClusterConfig(artifact_url="http://fnmesh-api.fnmesh-system.svc:8081").problems())
    assert "must be https://: replicas send their identity token" in found["artifact_url"]
