"""The embedded platform's configuration: typed, grouped, defaulted, validated once.

Sources, later ones winning: defaults, ``<home>/config.yaml``, ``FNMESH_*`` environment
variables given to ``load``, command-line options. Every problem is reported with its
field path before anything starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fnmesh.activator.settings import ActivatorConfig
from fnmesh.autoscaler.settings import AutoscalerConfig
from fnmesh.platform.model.durations import parse_duration
from fnmesh.platform.model.errors import Problems
from fnmesh.platform.model.quantities import parse_cpu, parse_memory
from fnmesh.platform.model.resource_policy import ResourcePolicy
from fnmesh.platform.runtime.local.outputrate import MAX_LINE_BYTES
from fnmesh.platform.runtime.local.settings import RuntimeConfig


@dataclass(frozen=True, slots=True)
class ListenConfig:
    host: str = "127.0.0.1"
    api_port: int = 8081
    gateway_port: int = 8080


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    domain: str = "fn.localhost"
    max_body_bytes: int = 10 * 1024 * 1024
    upstream_timeout: float = 60.0
    # what the gateway's listener takes from its clients (see fnmesh.platform.http.ServerLimits)
    max_connections: int = 1024  # connections at once; over -> 503 and close
    request_timeout: float = 60.0  # head and body, from the first byte; over -> 408
    max_buffered_bytes: int = 128 * 1024 * 1024  # request bodies held at once; over -> 503


@dataclass(frozen=True, slots=True)
class BuildConfig:
    max_bundle_bytes: int = 50 * 1024 * 1024
    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_files: int = 10_000
    timeout_seconds: float = 300.0  # one pip run, killed with everything it started after it
    allow_index_options: bool = False  # --index-url & co. in a function's requirements.txt


@dataclass(frozen=True, slots=True)
class PlatformConfig:
    home: Path
    listen: ListenConfig = field(default_factory=ListenConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    autoscaler: AutoscalerConfig = field(default_factory=AutoscalerConfig)
    activator: ActivatorConfig = field(default_factory=ActivatorConfig)
    # defaults and maximums of a replica's memory (bytes), cpu (millicores) and pids
    resources: ResourcePolicy = field(default_factory=ResourcePolicy)

    @property
    def state_db(self) -> Path:
        return self.home / "state.db"

    @property
    def build_root(self) -> Path:
        return self.home / "build"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def secrets_key_file(self) -> Path:
        """The key sealing function secrets: beside the store, never inside it."""
        return self.home / "keys" / "secrets.key"

    @property
    def context_file(self) -> Path:
        return self.home / "context.json"


class ConfigError(ValueError):
    pass


_GROUPS = {
    "listen": ListenConfig,
    "gateway": GatewayConfig,
    "build": BuildConfig,
    "runtime": RuntimeConfig,
    "autoscaler": AutoscalerConfig,
    "activator": ActivatorConfig,
    "resources": ResourcePolicy,
}


def load(
    home: Path, *, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> PlatformConfig:
    """Read ``<home>/config.yaml``, then ``FNMESH_<GROUP>_<FIELD>`` from ``env``, then overrides.

    ``overrides`` uses dotted keys: ``{"listen.api_port": 0}``.
    """
    problems = Problems()
    values: dict[str, dict[str, Any]] = {group: {} for group in _GROUPS}
    path = home / "config.yaml"
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping of groups ({', '.join(_GROUPS)})")
        for group, body in data.items():
            if group not in _GROUPS:
                problems.add(str(group), f"unknown group; known: {', '.join(_GROUPS)}")
            elif not isinstance(body, dict):
                problems.add(str(group), "must be a mapping")
            else:
                values[group].update(body)
    for key, raw in (env or {}).items():
        if not key.startswith("FNMESH_") or key == "FNMESH_HOME":
            continue
        group, _, name = key[len("FNMESH_") :].lower().partition("_")
        if group in _GROUPS and name:
            values[group][name] = raw
    for dotted, value in (overrides or {}).items():
        group, _, name = dotted.partition(".")
        values.setdefault(group, {})[name] = value
    groups = {group: _build(cls, values[group], group, problems) for group, cls in _GROUPS.items()}
    for name, message in groups["resources"].problems():
        problems.add(f"resources.{name}", message)
    if problems.errors:
        raise ConfigError(
            "invalid configuration:\n" + "\n".join(f"  - {e}" for e in problems.errors)
        )
    return PlatformConfig(home=home, **groups)


# Settings that a zero (or too small a value) would turn into a refusal of everything.
_MINIMUM: dict[str, float] = {
    "gateway.max_connections": 1,
    "gateway.request_timeout": 0.001,
    "gateway.max_buffered_bytes": 1,
    "runtime.log_lines_per_second": 1,
    "runtime.log_bytes_per_second": MAX_LINE_BYTES + 1,  # one whole line
}


def _build(cls: type, given: dict[str, Any], group: str, problems: Problems) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, raw in given.items():
        where = f"{group}.{name}"
        if name not in fields:
            problems.add(where, f"unknown setting; known: {', '.join(fields)}")
            continue
        default = getattr(cls(), name)
        if name.endswith(("_memory", "_cpu")):
            try:
                kwargs[name] = _quantity(name, raw)
            except ValueError as error:
                problems.add(where, str(error))
            continue
        value = _coerce(raw, default)
        if value is None:
            problems.add(where, f"must be {_kind(default)}, not {raw!r}")
        elif isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            problems.add(where, f"must not be negative, not {raw!r}")
        elif name.endswith("port") and isinstance(value, int) and value > 65535:
            problems.add(where, f"must be a port number (0-65535; 0 picks a free one), not {raw!r}")
        elif where in _MINIMUM and value < _MINIMUM[where]:
            problems.add(where, f"must be at least {_MINIMUM[where]:g}, not {raw!r}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _quantity(name: str, raw: Any) -> int:
    """A memory setting in bytes or a cpu setting in millicores ('256Mi', '500m', 2)."""
    amount = parse_memory(raw) if name.endswith("_memory") else parse_cpu(raw)
    if amount <= 0:
        raise ValueError(f"must be more than 0, not {raw!r}")
    return amount


def _coerce(raw: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        return {"true": True, "false": False}.get(str(raw).lower())
    if isinstance(default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            return None
    if isinstance(default, float):
        return parse_duration(raw)
    return str(raw) if isinstance(raw, str | int | float) else None


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number of seconds (or '500ms', '30s')"
    return "a string"
