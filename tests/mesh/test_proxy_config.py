"""FNMESH_PROXY_* settings: defaults, every problem reported at once with its variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from proxykit import ACTIVATOR, GATEWAY, HELLO, TELEMETRY, Mesh

from fnmesh.platform.mesh.proxy.config import Address, ProxyConfig
from fnmesh.platform.model.errors import ValidationError


def minimal(tmp_path: Path) -> dict[str, str]:
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(Mesh().anchors)
    return {
        "FNMESH_PROXY_UPSTREAM": "127.0.0.1:8080",
        "FNMESH_PROXY_IDENTITY": HELLO,
        "FNMESH_PROXY_IDENTITY_URL": "https://10.0.0.1:8443/",
        "FNMESH_PROXY_TRUST_ANCHORS": str(anchors),
        "FNMESH_PROXY_BOOTSTRAP_TOKEN": "t0k3n",
        "FNMESH_PROXY_NAMESPACE": "default",
        "FNMESH_PROXY_FUNCTION": "hello",
        "FNMESH_PROXY_REVISION": "hello-00001",
        "FNMESH_PROXY_POLICY_FILE": str(tmp_path / "policy.json"),
        "UNRELATED": "ignored",
    }


def test_defaults_fill_everything_optional(tmp_path: Path) -> None:
    config = ProxyConfig.from_env(minimal(tmp_path))
    assert config.listen.inbound == Address("0.0.0.0", 0)
    assert config.listen.admin == Address("127.0.0.1", 0)
    assert config.upstream == Address("127.0.0.1", 8080)
    assert config.identity.service_url == "https://10.0.0.1:8443"
    assert config.identity.service_identity.startswith("identity.fnmesh-system.")
    assert config.identity.credential() == "t0k3n"
    assert "BEGIN CERTIFICATE" in config.identity.trust_anchors_pem
    assert (config.limits.concurrency, config.limits.queue_depth) == (0, 1000)
    assert (config.limits.request_timeout, config.limits.drain_timeout) == (30.0, 30.0)
    assert (config.stats.url, config.stats.interval) == ("", 1.0)
    assert config.stats.server_identity == TELEMETRY
    assert config.policy.public_callers == frozenset({GATEWAY, ACTIVATOR})
    assert (config.tap.rate, config.tap.buffer) == (100.0, 1000)
    assert config.labels.replica  # the host name


def test_values_are_parsed_and_the_queue_follows_the_limit(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    env = minimal(tmp_path) | {
        "FNMESH_PROXY_CONCURRENCY": "4",
        "FNMESH_PROXY_REQUEST_TIMEOUT": "1500ms",
        "FNMESH_PROXY_DRAIN_TIMEOUT": "0",
        "FNMESH_PROXY_STATS_URL": "https://127.0.0.1:9000/v1/stats",
        "FNMESH_PROXY_STATS_INTERVAL": "0.5",
        "FNMESH_PROXY_INBOUND_PORT": "4143",
        "FNMESH_PROXY_UPSTREAM": "[::1]:9000",
        "FNMESH_PROXY_BOOTSTRAP_TOKEN": "",
        "FNMESH_PROXY_BOOTSTRAP_TOKEN_FILE": str(token),
        "FNMESH_PROXY_TRUST_ANCHORS": Mesh().anchors,  # the PEM text itself
    }
    config = ProxyConfig.from_env(env)
    assert (config.limits.concurrency, config.limits.queue_depth) == (4, 400)
    assert (config.limits.request_timeout, config.limits.drain_timeout) == (1.5, 0.0)
    assert config.stats.interval == 0.5 and config.listen.inbound.port == 4143
    assert config.upstream == Address("::1", 9000) and str(config.upstream) == "[::1]:9000"
    assert config.identity.credential() == "from-a-file"


def test_every_problem_is_named_before_failing(tmp_path: Path) -> None:
    env = minimal(tmp_path) | {
        "FNMESH_PROXY_UPSTREAM": "localhost",
        "FNMESH_PROXY_INBOUND_PORT": "70000",
        "FNMESH_PROXY_CONCURRENCY": "-1",
        "FNMESH_PROXY_REQUEST_TIMEOUT": "soon",
        "FNMESH_PROXY_STATS_URL": "http://stats",
        "FNMESH_PROXY_IDENTITY": "hello",
        "FNMESH_PROXY_TRUST_ANCHORS": str(tmp_path / "missing.pem"),
        "FNMESH_PROXY_TAP_RATE": "0",
    }
    del env["FNMESH_PROXY_BOOTSTRAP_TOKEN"], env["FNMESH_PROXY_REVISION"]
    with pytest.raises(ValidationError) as caught:
        ProxyConfig.from_env(env)
    named = {error.path for error in caught.value.errors}
    assert named == {
        "FNMESH_PROXY_UPSTREAM",
        "FNMESH_PROXY_INBOUND_PORT",
        "FNMESH_PROXY_CONCURRENCY",
        "FNMESH_PROXY_REQUEST_TIMEOUT",
        "FNMESH_PROXY_STATS_URL",
        "FNMESH_PROXY_IDENTITY",
        "FNMESH_PROXY_TRUST_ANCHORS",
        "FNMESH_PROXY_TAP_RATE",
        "FNMESH_PROXY_BOOTSTRAP_TOKEN",
        "FNMESH_PROXY_REVISION",
    }
    text = str(caught.value)
    assert "host:port" in text and "https://" in text and "'500ms'" in text


def test_nothing_set_says_what_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        ProxyConfig.from_env({})
    assert {e.path for e in caught.value.errors} >= {
        "FNMESH_PROXY_UPSTREAM",
        "FNMESH_PROXY_IDENTITY",
        "FNMESH_PROXY_IDENTITY_URL",
        "FNMESH_PROXY_TRUST_ANCHORS",
        "FNMESH_PROXY_BOOTSTRAP_TOKEN",
        "FNMESH_PROXY_NAMESPACE",
        "FNMESH_PROXY_POLICY_FILE",
    }
