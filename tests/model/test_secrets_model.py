"""Secret names, keys, sizes and the references a function spec makes to them."""

from __future__ import annotations

import pytest

from fnmesh.platform.model import ValidationError, parse_manifest
from fnmesh.platform.model.errors import Problems
from fnmesh.platform.model.manifest import parse_function
from fnmesh.platform.model.resources import Function, revision_spec_for
from fnmesh.platform.model.secrets import (
    MAX_KEY_BYTES,
    MAX_SECRET_BYTES,
    SecretInfo,
    SecretRef,
    check_secret_data,
    check_secret_key,
    check_secret_name,
    missing_references,
    parse_secret_ref,
)


@pytest.mark.parametrize("name", ["db", "api-keys", "a1", "x" * 56])
def test_good_names(name: str) -> None:
    assert check_secret_name(name) is None


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "is required"),
        ("DB", "DNS-1123"),
        ("db_creds", "DNS-1123"),
        ("-db", "DNS-1123"),
        ("a.b", "DNS-1123"),
        ("x" * 57, "at most 56"),
        (None, "is required"),
    ],
)
def test_bad_names_say_how_to_fix_them(name: object, says: str) -> None:
    message = check_secret_name(name)
    assert message is not None and says in message


@pytest.mark.parametrize("key", ["password", "tls.crt", "API_KEY", "a-b", ".hidden", "..x"])
def test_good_keys(key: str) -> None:
    assert check_secret_key(key) is None


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("", "is required"),
        (".", "not a file name"),
        ("..", "not a file name"),
        ("a/b", "no '/'"),
        ("../etc", "no '/'"),
        ("sp ace", "only letters"),
        ("k" * 254, "at most 253"),
    ],
)
def test_bad_keys_are_refused(key: str, says: str) -> None:
    message = check_secret_key(key)
    assert message is not None and says in message


def problems_of(data: dict[str, bytes]) -> list[str]:
    problems = Problems()
    check_secret_data(data, problems)
    return [str(e) for e in problems.errors]


def test_sizes_are_bounded_and_values_never_shown() -> None:
    value = b"Z" * (MAX_KEY_BYTES + 1)
    (message,) = problems_of({"big": value})
    assert message.startswith("data.big: ") and f"at most {MAX_KEY_BYTES}" in message
    assert "ZZZZ" not in message
    many = {f"k{i}": b"y" * MAX_KEY_BYTES for i in range(MAX_SECRET_BYTES // MAX_KEY_BYTES + 1)}
    (message,) = problems_of(many)
    assert message.startswith("data: ") and "split it into several secrets" in message
    assert problems_of({}) == ["data: holds no key: give at least one (--from-literal KEY=VALUE)"]
    assert problems_of({"ok": b"x" * MAX_KEY_BYTES}) == []


def test_every_bad_key_is_reported() -> None:
    messages = problems_of({"a/b": b"1", "..": b"2", "fine": b"3"})
    assert len(messages) == 2


def test_secret_refs() -> None:
    assert parse_secret_ref("db/password") == SecretRef("db", "password")
    assert "NAME/KEY" in str(parse_secret_ref("db"))
    assert "DNS-1123" in str(parse_secret_ref("DB/password"))
    assert "no '/'" in str(parse_secret_ref("db/a/b"))


MANIFEST = """
name: hello
handler: main:handle
secrets: [db, api]
secretEnv:
  DB_PASSWORD: db/password
"""


def test_manifest_names_secrets_and_the_revision_freezes_the_names() -> None:
    manifest = parse_manifest(MANIFEST)
    assert manifest.spec.secrets == ["db", "api"]
    assert manifest.spec.secret_env == {"DB_PASSWORD": "db/password"}
    body = manifest.function().to_dict()
    assert body["spec"]["secrets"] == ["db", "api"]
    assert body["spec"]["secretEnv"] == {"DB_PASSWORD": "db/password"}
    from fnmesh.platform.model import Artifact
    from fnmesh.platform.model.resources import FunctionSpec

    spec = FunctionSpec(
        handler="main:handle",
        artifact=Artifact(digest="sha256:" + "0" * 64),
        secrets=["db"],
        secret_env={"X": "db/k"},
    )
    frozen = revision_spec_for(Function(metadata=manifest.function().metadata, spec=spec))
    assert (frozen.secrets, frozen.secret_env) == (["db"], {"X": "db/k"})


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("secrets: [Bad_Name]", "secrets[0]", "DNS-1123"),
        ("secrets: [db, db]", "secrets", "twice"),
        ("secrets: db", "secrets", "must be a list"),
        ("secretEnv: {X: other/key}\nsecrets: [db]", "secretEnv.X", "not in 'secrets'"),
        ("secretEnv: {X: db}\nsecrets: [db]", "secretEnv.X", "NAME/KEY"),
        ("secretEnv: {X: db/a/b}\nsecrets: [db]", "secretEnv.X", "no '/'"),
        ("secretEnv: {FNMESH_X: db/k}\nsecrets: [db]", "secretEnv", "set by the platform"),
        ("secretEnv: {X: db/k}\nsecrets: [db]\nenv: {X: '1'}", "secretEnv.X", "also set by"),
    ],
)
def test_manifest_refuses_bad_references(text: str, field: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_manifest(f"name: hello\nhandler: main:handle\n{text}\n")
    found = {e.path: e.message for e in caught.value.errors}
    assert field in found, found
    assert says in found[field]


def test_api_functions_are_checked_the_same_way() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_function(
            {"metadata": {"name": "hello"}, "spec": {"handler": "m:h", "secretEnv": {"X": "a/b"}}}
        )
    assert [e.path for e in caught.value.errors] == ["spec.secretEnv.X"]


def test_missing_references_name_the_field_and_the_command() -> None:
    found = {"db": SecretInfo("db", "default", ("password",)), "gone": None}
    errors = missing_references(
        "default", ["db", "gone"], {"A": "db/password", "B": "db/user"}, found, "spec."
    )
    assert [e.path for e in errors] == ["spec.secrets[1]", "spec.secretEnv.B"]
    assert "fn secret create gone" in errors[0].message
    assert "its keys: password" in errors[1].message


def test_info_never_carries_values() -> None:
    body = SecretInfo("db", "team", ("a", "b"), "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    assert body.to_dict() == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "team",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "type": "Opaque",
        "keys": ["a", "b"],
        "updated": "2026-01-02T00:00:00Z",
    }
