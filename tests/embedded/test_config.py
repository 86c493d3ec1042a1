from pathlib import Path

import pytest

from fnmesh.platform.embedded.config import ConfigError, load


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.listen.gateway_port == 8080
    assert config.state_db == tmp_path / "state.db"


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "listen: {api_port: 9000, gateway_port: 9001}\nruntime: {stop_timeout: 2s}\n"
    )
    config = load(
        tmp_path,
        env={"FNMESH_LISTEN_GATEWAY_PORT": "9002", "HOME": "/x"},
        overrides={"listen.api_port": 0},
    )
    assert (config.listen.api_port, config.listen.gateway_port) == (0, 9002)
    assert config.runtime.stop_timeout == 2.0


def test_every_problem_is_reported(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "listen: {api_port: lots, gateway_port: 70000}\nbuild: {max_fils: 1}\nnope: {}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    text = str(caught.value)
    for words in ("listen.api_port", "listen.gateway_port", "build.max_fils", "nope"):
        assert words in text


def test_bounds_of_the_gateway_and_of_replica_output(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        env={
            "FNMESH_GATEWAY_MAX_CONNECTIONS": "50",
            "FNMESH_GATEWAY_REQUEST_TIMEOUT": "5s",
            "FNMESH_RUNTIME_LOG_LINES_PER_SECOND": "10",
        },
    )
    assert config.gateway.max_connections == 50
    assert config.gateway.request_timeout == 5.0
    assert config.runtime.log_lines_per_second == 10


def test_bounds_that_would_refuse_everything_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "gateway: {max_connections: 0, max_buffered_bytes: 0}\n"
        "runtime: {log_lines_per_second: 0, log_bytes_per_second: 100}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    text = str(caught.value)
    assert "gateway.max_connections: must be at least 1" in text
    assert "gateway.max_buffered_bytes: must be at least 1" in text
    assert "runtime.log_lines_per_second: must be at least 1" in text
    assert "runtime.log_bytes_per_second: must be at least 16385" in text


def test_resource_defaults_and_maximums_take_quantities(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "resources: {default_memory: 128Mi, max_memory: 1Gi, default_cpu: 500m, max_cpu: 2}\n"
    )
    config = load(tmp_path, env={"FNMESH_RESOURCES_MAX_PIDS": "512"})
    policy = config.resources
    assert (policy.default_memory, policy.max_memory) == (128 * 1024**2, 1024**3)
    assert (policy.default_cpu, policy.max_cpu, policy.max_pids) == (500, 2000, 512)


def test_resource_settings_are_checked(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "resources: {default_memory: 128m, default_cpu: 3, max_cpu: 2}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    text = str(caught.value)
    assert "resources.default_memory: '128m' is milli-bytes" in text
    assert "resources.default_cpu: is 3, above max_cpu 2" in text
