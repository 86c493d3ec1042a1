"""What a replica is handed of its revision's secrets: a pure decision, tested as a table.

Given the secret names and ``secretEnv`` a revision froze, and the values the store
holds, ``hand_off`` returns the mapping for ``LaunchSpec.secrets`` (secret name -> key
-> bytes, to become files ``/var/run/secrets/fnmesh/<name>/<key>``) and the variables
``secretEnv`` adds to the replica's environment. Every name and key is checked again
here, since they become paths: none is ``.``/``..`` or holds a ``/``. A missing secret or
key, or a value that cannot be an environment variable, refuses the launch with every
problem named -- and never a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fnmesh.platform.model.secrets import (
    SECRETS_DIR,
    check_secret_key,
    check_secret_name,
    parse_secret_ref,
)


class SecretsUnavailable(Exception):
    """The revision's secrets cannot be handed over; ``str`` says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class Handoff:
    secrets: dict[str, dict[str, bytes]] = field(default_factory=dict, repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)


def normalize_secrets(secrets: Mapping[str, Mapping[str, bytes]]) -> dict[str, dict[str, bytes]]:
    """A copy of ``LaunchSpec.secrets`` with every name and key safe as a path component;
    SecretsUnavailable names each one that is not."""
    problems: list[str] = []
    out: dict[str, dict[str, bytes]] = {}
    for name, data in secrets.items():
        problem = check_secret_name(name)
        if problem:
            problems.append(problem)
            continue
        keys: dict[str, bytes] = {}
        for key, value in data.items():
            problem = check_secret_key(key)
            if problem:
                problems.append(f"secret {name!r}: {problem}")
            elif not isinstance(value, bytes | bytearray | memoryview):
                problems.append(f"secret {name!r}, key {key!r}: the value is not bytes")
            else:
                keys[key] = bytes(value)
        out[name] = keys
    if problems:
        raise SecretsUnavailable("; ".join(problems))
    return out


def hand_off(
    namespace: str,
    names: Sequence[str],
    secret_env: Mapping[str, str],
    found: Mapping[str, Mapping[str, bytes] | None],
) -> Handoff:
    """The secrets and environment for a replica; ``found[name]`` is None for a secret the
    store does not have."""
    problems: list[str] = []
    present: dict[str, Mapping[str, bytes]] = {}
    for name in names:
        data = found.get(name)
        if data is None:
            problems.append(
                f"secret {namespace}/{name} does not exist: create it "
                f"(`fn secret create {name} -n {namespace} --from-literal KEY=VALUE`)"
            )
        else:
            present[name] = data
    env: dict[str, str] = {}
    for variable, target in secret_env.items():
        ref = parse_secret_ref(target)
        if isinstance(ref, str):
            problems.append(f"secretEnv.{variable}: {ref}")
            continue
        if ref.name not in names:
            problems.append(f"secretEnv.{variable}: secret {ref.name!r} is not in 'secrets'")
            continue
        data = present.get(ref.name)
        if data is None:
            continue  # already reported
        if ref.key not in data:
            known = ", ".join(sorted(data)) or "none"
            problems.append(
                f"secretEnv.{variable}: secret {ref.name!r} has no key {ref.key!r} "
                f"(its keys: {known})"
            )
            continue
        text = _env_text(bytes(data[ref.key]))
        if text is None:
            problems.append(
                f"secretEnv.{variable}: key {ref.key!r} of secret {ref.name!r} is not UTF-8 "
                f"text without NUL bytes; read it from {SECRETS_DIR}/{ref.name}/{ref.key}"
            )
            continue
        env[variable] = text
    if problems:
        raise SecretsUnavailable("; ".join(problems))
    return Handoff(normalize_secrets(present), env)


def _env_text(value: bytes) -> str | None:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text
