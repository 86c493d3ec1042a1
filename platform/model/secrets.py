"""Function secrets: names, keys, sizes, and the references a function spec makes.

A secret is a named set of keys, each holding bytes, in a namespace. A function names
the secrets it may see (``secrets: [db]``: files ``/var/run/secrets/fnmesh/db/<key>``)
and may map single keys into environment variables (``secretEnv: {DB_PASSWORD: db/password}``).
Specs carry only these names, never values; nothing here ever puts a value in a message.

Purely computational, like the rest of the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fnmesh.platform.model.errors import FieldError, Problems
from fnmesh.platform.model.names import check_name

# A pod mounts a secret through the volume "secret-<name>", itself a DNS label (<= 63).
MAX_SECRET_NAME = 56
MAX_KEY_LENGTH = 253  # as Kubernetes allows for a Secret's key
MAX_KEY_BYTES = 64 * 1024
MAX_SECRET_BYTES = 1024 * 1024  # the Kubernetes limit on a Secret's data
MAX_KEYS = 256
SECRETS_DIR = "/var/run/secrets/fnmesh"  # where a replica finds <name>/<key>
_KEY = re.compile(r"^[-._A-Za-z0-9]+$")


def check_secret_name(value: object) -> str | None:
    """Why ``value`` is not a secret's name (a DNS-1123 label), or None."""
    return check_name(value, what="secret name", limit=MAX_SECRET_NAME)


def check_secret_key(value: object) -> str | None:
    """Why ``value`` is not a key of a secret (a file name: ``[-._A-Za-z0-9]+``), or None."""
    if not isinstance(value, str) or not value:
        return "a key is required: use letters, digits, '-', '_' and '.' (e.g. 'password')"
    if len(value) > MAX_KEY_LENGTH:
        return (
            f"key {value[:40]!r}... is {len(value)} characters long; use at most {MAX_KEY_LENGTH}"
        )
    if value in (".", ".."):
        return f"key {value!r} is not a file name: use letters, digits, '-', '_' and '.'"
    if not _KEY.match(value):
        return (
            f"key {value!r} may hold only letters, digits, '-', '_' and '.' (no '/'): "
            "it becomes a file name (e.g. 'password' or 'tls.crt')"
        )
    return None


def check_secret_data(data: Mapping[str, bytes], problems: Problems, path: str = "data") -> None:
    """Every problem of a secret's keys and values: names, sizes, count. Values are never
    shown, only their sizes."""
    if not data:
        problems.add(path, "holds no key: give at least one (--from-literal KEY=VALUE)")
    if len(data) > MAX_KEYS:
        problems.add(path, f"holds {len(data)} keys; use at most {MAX_KEYS}")
    total = 0
    for key, value in data.items():
        message = check_secret_key(key)
        where = f"{path}.{key}" if isinstance(key, str) and _KEY.match(key) else path
        if message:
            problems.add(where, message)
            continue
        if not isinstance(value, bytes):
            problems.add(where, "must be bytes")
            continue
        total += len(value)
        if len(value) > MAX_KEY_BYTES:
            problems.add(
                where,
                f"is {len(value)} bytes; a key holds at most {MAX_KEY_BYTES} "
                "(split it over several keys, or keep large files in the function's source)",
            )
    if total > MAX_SECRET_BYTES:
        problems.add(
            path,
            f"holds {total} bytes in all; a secret holds at most {MAX_SECRET_BYTES}: "
            "split it into several secrets",
        )


@dataclass(frozen=True, slots=True)
class SecretRef:
    """One key of one secret: ``name/key`` in ``secretEnv``."""

    name: str
    key: str

    def __str__(self) -> str:
        return f"{self.name}/{self.key}"


def parse_secret_ref(value: str) -> SecretRef | str:
    """``NAME/KEY`` as a SecretRef, or why it is not one."""
    name, slash, key = value.partition("/")
    if not slash:
        return f"{value!r} is not 'NAME/KEY': name the secret and its key (e.g. 'db/password')"
    problem = check_secret_name(name) or check_secret_key(key)
    return problem if problem else SecretRef(name, key)


def check_secret_names(value: Any) -> str | None:
    """The ``secrets`` list of a spec: valid names, none twice."""
    seen: set[str] = set()
    for name in value:
        problem = check_secret_name(name)
        if problem:
            return problem
        if name in seen:
            return f"names secret {name!r} twice; list each secret once"
        seen.add(name)
    return None


def check_secret_env(
    secret_env: Mapping[str, str],
    secrets: list[str],
    env: Mapping[str, str],
    path: str,
    problems: Problems,
) -> None:
    """Cross-checks of ``secretEnv``: each value is ``NAME/KEY`` of a listed secret, and no
    variable is also set by ``env``."""
    for variable, target in secret_env.items():
        where = f"{path}.{variable}"
        ref = parse_secret_ref(target)
        if isinstance(ref, str):
            problems.add(where, ref)
            continue
        if ref.name not in secrets:
            problems.add(
                where,
                f"names secret {ref.name!r}, which is not in 'secrets': add it there "
                f"(secrets: [{ref.name}])",
            )
        if variable in env:
            problems.add(where, f"{variable!r} is also set by 'env'; keep it in one of the two")


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be said about a secret: never its values."""

    name: str
    namespace: str
    keys: tuple[str, ...]
    created: str | None = None
    updated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                **({"creationTimestamp": self.created} if self.created else {}),
            },
            "type": "Opaque",
            "keys": list(self.keys),
            **({"updated": self.updated} if self.updated else {}),
        }


def missing_references(
    namespace: str,
    secrets: list[str],
    secret_env: Mapping[str, str],
    found: Mapping[str, SecretInfo | None],
    prefix: str = "",
) -> list[FieldError]:
    """What a spec names that the namespace lacks: secrets, and keys ``secretEnv`` uses.
    ``found[name]`` is None for a secret that does not exist."""
    errors: list[FieldError] = []
    for index, name in enumerate(secrets):
        if found.get(name) is None:
            errors.append(
                FieldError(
                    f"{prefix}secrets[{index}]",
                    f"secret {name!r} does not exist in namespace {namespace!r}: create it "
                    f"first (`fn secret create {name} -n {namespace} --from-literal KEY=VALUE`)",
                )
            )
    for variable, target in secret_env.items():
        ref = parse_secret_ref(target)
        info = found.get(ref.name) if isinstance(ref, SecretRef) else None
        if isinstance(ref, SecretRef) and info is not None and ref.key not in info.keys:
            errors.append(
                FieldError(
                    f"{prefix}secretEnv.{variable}",
                    f"secret {ref.name!r} has no key {ref.key!r} (its keys: "
                    f"{', '.join(info.keys) or 'none'}): add it with `fn secret create "
                    f"{ref.name} --replace ...` or name another key",
                )
            )
    return errors
