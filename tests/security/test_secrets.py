"""Function secrets end to end: a value goes in once and is found nowhere but the replica.

A real `fn up`, the real CLI, a real replica. The secret's plaintext (and its base64
form, as it travels to the API) is then searched for in every file of the platform's
home -- the SQLite store, its WAL, logs, build logs, artifacts -- in every API answer,
in `fn describe -o json`, `fn secret list` and `fn logs`, and in the Kubernetes objects
the builders would render for the same revision.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from support.e2e import Platform, http, wait_for

from fnmesh.platform.model import Revision
from fnmesh.platform.model.secrets import MAX_KEY_BYTES
from fnmesh.platform.runtime.kubernetes import (
    ClusterConfig,
    make_deployment,
    make_service,
)

pytestmark = pytest.mark.e2e

PASSWORD = "pw-0d9c1e7a-distinctive-plaintext"
CERT = b"-----CERT 5b21f0 distinctive file content-----\n"
NEEDLES = [
    PASSWORD.encode(),
    base64.b64encode(PASSWORD.encode()),
    CERT.strip(),
    base64.b64encode(CERT),
]
NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
TOO_BIG = b"B" * (MAX_KEY_BYTES + 1)

HANDLER = """
import hashlib
import os

from fnmesh.functions import Request


def handle(req: Request) -> str:
    value = os.environ.get("DB_PASSWORD", "")
    print(f"handling a request with a password of {len(value)} characters", flush=True)
    return hashlib.sha256(value.encode()).hexdigest()
"""


def leaks(text: str | bytes) -> list[bytes]:
    data = text.encode() if isinstance(text, str) else text
    return [needle for needle in NEEDLES if needle in data]


def function_folder(root: Path, name: str, secrets: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "main.py").write_text(HANDLER)
    (folder / "fn.yaml").write_text(f"name: {name}\nhandler: main:handle\n{secrets}")
    return folder


def api(platform: Platform, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {**platform.auth, "Content-Type": "application/json"}
    reply = http(method, platform.api + NS + path, data, headers)
    return reply.status, reply.body


def test_a_secret_reaches_its_function_and_nothing_else(platform: Platform, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(CERT)
    made = platform.fn(
        "secret", "create", "db", "--from-literal", f"password={PASSWORD}",
        "--from-file", f"cert={cert}", check=True,
    )  # fmt: skip
    assert "keys: cert, password" in made.stdout
    outputs = [made.stdout + made.stderr]

    key_file = platform.home / "keys" / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700

    folder = function_folder(
        tmp_path, "vault", "secrets: [db]\nsecretEnv:\n  DB_PASSWORD: db/password\n"
    )
    deployed = platform.fn("deploy", str(folder), check=True)
    outputs.append(deployed.stdout + deployed.stderr)

    reply = platform.invoke("/fn/vault/")
    assert reply.status == 200, reply
    assert reply.body.decode().strip() == hashlib.sha256(PASSWORD.encode()).hexdigest()
    outputs.append(reply.body.decode())

    def replica_log() -> str | None:
        done = platform.fn("logs", "vault")
        return done.stdout if "password of" in done.stdout else None

    logs = wait_for("the replica's log line", replica_log)
    assert f"password of {len(PASSWORD)} characters" in logs
    outputs.append(logs)

    for args in (
        ("describe", "vault", "-o", "json"),
        ("describe", "vault"),
        ("secret", "list"),
        ("secret", "list", "-o", "json"),
        ("secret", "list", "-o", "yaml"),
        ("list",),
        ("revisions", "vault"),
    ):
        done = platform.fn(*args, check=True)
        outputs.append(done.stdout + done.stderr)
    described = json.loads(platform.fn("describe", "vault", "-o", "json", check=True).stdout)
    assert described["function"]["spec"]["secrets"] == ["db"]
    assert described["function"]["spec"]["secretEnv"] == {"DB_PASSWORD": "db/password"}
    (revision,) = described["revisions"]
    assert revision["spec"]["secrets"] == ["db"]
    listed = platform.fn("secret", "list", check=True).stdout
    assert "db" in listed and "cert, password" in listed

    build = described["function"]["spec"]["artifact"]["build"]
    for path in (
        "/secrets",
        "/secrets/db",
        "/functions/vault",
        "/revisions",
        f"/revisions/{revision['metadata']['name']}",
        f"/functions/vault/builds/{build}/log",
        "/functions/vault/logs",
    ):
        status, body = api(platform, "GET", path)
        assert status == 200, (path, body)
        outputs.append(body.decode())
    # a replace answers with the keys only, and bad input is refused without echoing it
    encoded = {
        "password": base64.b64encode(PASSWORD.encode()).decode(),
        "cert": base64.b64encode(CERT).decode(),
        "bad/key": base64.b64encode(PASSWORD.encode()).decode(),
    }
    status, body = api(
        platform, "PUT", "/secrets/db", {"metadata": {"name": "db"}, "data": encoded}
    )
    assert status == 422 and b"data" in body
    outputs.append(body.decode())

    # the Kubernetes objects of the same revision name the secret, never hold it
    frozen = Revision.from_dict(revision)
    outputs.append(json.dumps(make_deployment(frozen, ClusterConfig())))
    outputs.append(json.dumps(make_service(frozen)))

    for text in outputs:
        assert not leaks(text), text

    def files_with_leaks() -> dict[str, list[bytes]]:
        files = [p for p in platform.home.rglob("*") if p.is_file() and p != key_file]
        found = {str(p.relative_to(platform.home)): leaks(p.read_bytes()) for p in files}
        return {name: found for name, found in found.items() if found}

    assert (platform.home / "state.db-wal").exists()  # searched while the WAL holds writes
    assert files_with_leaks() == {}
    platform.stop()  # and once everything is flushed and checkpointed
    assert files_with_leaks() == {}


def test_deploys_and_deletes_are_checked_against_the_secrets_there_are(
    platform: Platform, tmp_path: Path
) -> None:
    folder = function_folder(tmp_path, "needy", "secrets: [nope]\n")
    refused = platform.fn("deploy", str(folder))
    assert refused.returncode == 2, refused
    assert "secrets[0]" in refused.stderr
    assert "fn secret create nope" in refused.stderr

    platform.fn("secret", "create", "nope", "--from-literal", f"k={PASSWORD}", check=True)
    folder2 = function_folder(tmp_path, "keyed", "secrets: [nope]\nsecretEnv:\n  X: nope/missing\n")
    refused = platform.fn("deploy", str(folder2))
    assert refused.returncode == 2 and "secretEnv.X" in refused.stderr
    assert "has no key 'missing'" in refused.stderr

    platform.fn("deploy", str(folder), check=True)
    in_use = platform.fn("secret", "delete", "nope", "-y")
    assert in_use.returncode == 2 and "used by function(s) needy" in in_use.stderr
    platform.fn("delete", "needy", "-y", check=True)
    platform.fn("secret", "delete", "nope", "-y", check=True)
    assert "no secrets" in platform.fn("secret", "list", check=True).stdout
    gone = platform.fn("secret", "delete", "nope", "-y")
    assert gone.returncode == 1 and "not found" in gone.stderr
    assert not leaks(refused.stdout + refused.stderr + in_use.stderr)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["Bad_Name", "--from-literal", "k=v"], "NAME: secret name 'Bad_Name' is not a DNS-1123"),
        (["db", "--from-literal", "a/b=v"], "--from-literal a/b: key 'a/b' may hold only"),
        (["db", "--from-literal", "..=v"], "--from-literal ..: key '..' is not a file name"),
        (["db", "--from-literal", "novalue"], "--from-literal: must be KEY=VALUE"),
        (["db"], "give at least one --from-literal"),
        (
            ["db", "--from-literal", "k=1", "--from-literal", "k=2"],
            "--from-literal k: key 'k' is given twice",
        ),
        (["db", "--from-file", "big={big}"], f"--from-file big: {{big}} is over {MAX_KEY_BYTES}"),
        (["db", "--from-file", "k=/nonexistent/file"], "cannot read /nonexistent/file"),
    ],
)
def test_bad_secrets_are_refused_by_the_cli_naming_the_field(
    platform: Platform, tmp_path: Path, args: list[str], says: str
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"A" * (MAX_KEY_BYTES + 1))
    args = [a.replace("{big}", str(big)) for a in args]
    done = platform.fn("secret", "create", *args)
    assert done.returncode == 2, done
    assert says.replace("{big}", str(big)) in done.stderr, done.stderr
    assert "AAAA" not in done.stderr


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": {"name": "Bad"}, "data": {"k": "dg=="}}, "metadata.name"),
        ({"metadata": {"name": "db"}, "data": {"a/b": "dg=="}}, "data"),
        ({"metadata": {"name": "db"}, "data": {"k": "not base64!"}}, "data.k"),
        ({"metadata": {"name": "db"}, "data": {}}, "data"),
        ({"metadata": {"name": "db"}, "data": {"k": "dg=="}, "type": "kubernetes.io/tls"}, "type"),
        (
            {"metadata": {"name": "db"}, "data": {"k": base64.b64encode(TOO_BIG).decode()}},
            "data.k",
        ),
    ],
)  # fmt: skip
def test_bad_secrets_are_refused_by_the_api_naming_the_field(
    platform: Platform, body: dict[str, object], field: str
) -> None:
    status, answer = api(platform, "POST", "/secrets", body)
    assert status == 422, answer
    causes = json.loads(answer)["details"]["causes"]
    assert field in [c["field"] for c in causes], causes
    assert b"BBBB" not in answer


def test_an_oversized_secret_is_refused_before_it_is_read(platform: Platform) -> None:
    data = {f"k{i}": base64.b64encode(b"C" * MAX_KEY_BYTES).decode() for i in range(24)}
    status, answer = api(platform, "POST", "/secrets", {"metadata": {"name": "db"}, "data": data})
    assert status == 413, answer
    assert b"split it into several secrets" in answer
