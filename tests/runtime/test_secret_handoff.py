"""What a replica is handed of its secrets: the pure hand-off, and the runtime resolving it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from fnmesh.platform.model import Revision
from fnmesh.platform.model.resources import Artifact, ObjectMeta, RevisionSpec
from fnmesh.platform.runtime.local import LocalRuntime, LogBook
from fnmesh.platform.runtime.local.secret_handoff import (
    SecretsUnavailable,
    hand_off,
    normalize_secrets,
)
from fnmesh.platform.runtime.local.settings import RuntimeConfig
from fnmesh.platform.store import NotFound, SqliteStore

VALUE = b"handoff-plaintext-91c2"


def test_hand_off_maps_names_keys_and_env() -> None:
    handed = hand_off(
        "team",
        ["db", "tls"],
        {"DB_PASSWORD": "db/password"},
        {"db": {"password": VALUE, "user": b"app"}, "tls": {"tls.key": b"\x00\xffbinary"}},
    )
    assert handed.secrets == {
        "db": {"password": VALUE, "user": b"app"},
        "tls": {"tls.key": b"\x00\xffbinary"},
    }
    assert handed.env == {"DB_PASSWORD": VALUE.decode()}
    assert VALUE.decode() not in repr(handed)


def test_only_listed_secrets_are_handed_over() -> None:
    handed = hand_off("team", ["db"], {}, {"db": {"k": b"v"}, "other": {"k": b"x"}})
    assert list(handed.secrets) == ["db"]


@pytest.mark.parametrize(
    ("names", "secret_env", "found", "says"),
    [
        (["db"], {}, {"db": None}, "secret team/db does not exist"),
        (["db"], {"X": "db/missing"}, {"db": {"k": VALUE}}, "has no key 'missing' (its keys: k)"),
        (["db"], {"X": "other/k"}, {"db": {"k": VALUE}}, "'other' is not in 'secrets'"),
        (["db"], {"X": "db/k"}, {"db": {"k": b"\xff\xfe"}}, "not UTF-8 text"),
        (["db"], {"X": "db/k"}, {"db": {"k": b"a\x00b"}}, "/var/run/secrets/fnmesh/db/k"),
        (["db"], {}, {"db": {"../escape": VALUE}}, "no '/'"),
        (["db"], {}, {"db": {"..": VALUE}}, "not a file name"),
        (["Bad"], {}, {"Bad": {"k": VALUE}}, "DNS-1123"),
    ],
)
def test_refusals_name_the_problem_never_the_value(
    names: list[str],
    secret_env: dict[str, str],
    found: dict[str, dict[str, bytes] | None],
    says: str,
) -> None:
    with pytest.raises(SecretsUnavailable) as caught:
        hand_off("team", names, secret_env, found)
    assert says in str(caught.value)
    assert VALUE.decode() not in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SecretsUnavailable) as caught:
        hand_off("team", ["a", "b"], {"X": "a/k"}, {"a": None, "b": None})
    assert "team/a" in str(caught.value) and "team/b" in str(caught.value)


def test_normalize_copies_to_plain_bytes() -> None:
    given = {"db": {"k": bytearray(b"v")}}
    assert normalize_secrets(given) == {"db": {"k": b"v"}}  # type: ignore[dict-item]
    with pytest.raises(SecretsUnavailable, match="not bytes"):
        normalize_secrets({"db": {"k": "text"}})  # type: ignore[dict-item]


class Values:
    """A SecretValues over a dict, counting reads."""

    def __init__(self, data: dict[tuple[str, str], dict[str, bytes]]) -> None:
        self.data = data
        self.reads = 0

    def read(self, namespace: str, name: str) -> Mapping[str, bytes]:
        self.reads += 1
        try:
            return self.data[(namespace, name)]
        except KeyError:
            raise NotFound(f"secret {namespace}/{name} not found") from None


def revision(**spec: object) -> Revision:
    return Revision(
        metadata=ObjectMeta(name="hello-00001", namespace="team"),
        spec=RevisionSpec(
            function="hello",
            handler="main:handle",
            artifact=Artifact("sha256:" + "0" * 64),
            env={"MODE": "prod"},
            **spec,  # type: ignore[arg-type]
        ),
    )


def runtime(tmp_path: Path, values: Values | None) -> tuple[LocalRuntime, SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    logbook = LogBook(tmp_path / "logs")
    config = RuntimeConfig(warm_pool_size=0, restart_backoff_min=60, restart_backoff_max=60)
    return LocalRuntime(config, store, tmp_path / "build", logbook, secrets=values), store


def test_launch_spec_resolves_secrets_at_launch(tmp_path: Path) -> None:
    values = Values({("team", "db"): {"password": VALUE}})
    local, store = runtime(tmp_path, values)
    rev = revision(secrets=["db"], secret_env={"DB_PASSWORD": "db/password"})
    spec = local.launch_spec(rev)
    assert spec.secrets == {"db": {"password": VALUE}}
    assert spec.env == {"MODE": "prod", "DB_PASSWORD": VALUE.decode()}
    assert rev.spec.env == {"MODE": "prod"}  # the revision itself never holds values
    assert "secrets=" not in repr(spec)  # the values stay out of its repr
    values.data[("team", "db")] = {"password": b"rotated"}
    assert local.launch_spec(rev).secrets == {"db": {"password": b"rotated"}}
    store.close()


def test_launch_spec_without_secrets_reads_nothing(tmp_path: Path) -> None:
    values = Values({})
    local, store = runtime(tmp_path, values)
    spec = local.launch_spec(revision())
    assert (spec.secrets, values.reads) == ({}, 0)
    store.close()


async def test_a_missing_secret_fails_the_revision_with_the_fix(tmp_path: Path) -> None:
    local, store = runtime(tmp_path, Values({}))
    rev = revision(secrets=["db"])
    store.create(rev.to_dict())
    await local.scale(rev, 1)
    deadline = time.monotonic() + 5
    message = None
    while time.monotonic() < deadline:
        status = store.get("Revision", "team", "hello-00001").get("status") or {}
        ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
        if ready and ready[0]["status"] == "False":
            message = ready[0]["message"]
            break
        await asyncio.sleep(0.01)
    await local.close()
    store.close()
    assert message is not None, "the revision never reported the missing secret"
    assert "secret team/db does not exist" in message and "fn secret create db" in message
    assert ready[0]["reason"] == "ReplicaFailed"
