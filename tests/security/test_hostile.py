"""A hostile function tries every attack on the platform and its neighbours; none works.

The function (``hostile_main.py``) is deployed beside a private function holding a
secret in its code and a public one it may call. It reports, attack by attack, what it
got; the test asserts it got nothing, while its legitimate work still succeeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from support.e2e import NEEDS_ROOT, ROOT, Platform, http, wait_for
from support.procs import alive, children, listening_ports, with_marker

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not ROOT, reason=NEEDS_ROOT)]
HERE = Path(__file__).parent


def write(folder: Path, manifest: str, code: str) -> Path:
    folder.mkdir()
    (folder / "fn.yaml").write_text(manifest)
    (folder / "main.py").write_text(code)
    return folder


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def allow(platform: Platform, *, source: str, destination: str) -> None:
    target = {
        "apiVersion": "access.smi-spec.io/v1alpha3",
        "kind": "TrafficTarget",
        "metadata": {"name": f"{source}-to-{destination}"},
        "spec": {
            "destination": {"kind": "ServiceAccount", "name": destination},
            "sources": [{"kind": "ServiceAccount", "name": source}],
            "rules": [],
        },
    }
    created = http(
        "POST",
        f"{platform.api}/apis/fnmesh.dev/v1alpha1/namespaces/default/traffictargets",
        json.dumps(target).encode(),
        {**platform.auth, "Content-Type": "application/json"},
    )
    assert created.status == 201, created


def deploy_neighbours(platform: Platform, tmp_path: Path) -> None:
    platform.fn("secret", "create", "vault-creds", "--from-literal", "token=VAULT", check=True)
    platform.fn(
        "deploy",
        str(
            write(
                tmp_path / "vault",
                "name: vault\nhandler: main:handle\nvisibility: private\nsecrets: [vault-creds]\n",
                "SECRET = 'VAULT-CODE-SECRET'\n\ndef handle(req):\n    return SECRET\n",
            )
        ),
        check=True,
    )
    platform.fn(
        "deploy",
        str(
            write(
                tmp_path / "helper",
                "name: helper\nhandler: main:handle\n",
                "def handle(req):\n    return 'helped'\n",
            )
        ),
        check=True,
    )


def deploy_hostile(platform: Platform, tmp_path: Path, marker: str) -> None:
    platform.fn("secret", "create", "evil-creds", "--from-literal", "token=EVIL-OWN", check=True)
    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(HERE / "hostile_main.py", folder / "main.py")
    (folder / "fn.yaml").write_text(
        f"name: evil\nhandler: main:handle\nenv: {{OUTLIVE_MARKER: {marker}}}\n"
        "secrets: [evil-creds]\n"
    )
    platform.fn("deploy", str(folder), check=True)


def test_a_hostile_function_gets_nothing_and_still_works(
    platform: Platform, tmp_path: Path
) -> None:
    deploy_neighbours(platform, tmp_path)
    marker = f"fnmesh-outlive-{os.getpid()}"
    deploy_hostile(platform, tmp_path, marker)
    artifacts = platform.home / "build" / "artifacts"
    before = {p.name: tree_digest(p) for p in artifacts.iterdir()}
    policy = platform.home / "run" / "policy"
    policies = {p: p.read_bytes() for p in policy.rglob("*.json")}
    plan = {
        "home": str(platform.home),
        "ports": [("127.0.0.1", port) for port in listening_ports()],
        "egress": [
            "/tmp/fnmesh-*/r-*/sock/*.sock",
            f"{platform.home}/run/replicas/r-*/sock/*.sock",
        ],
        "pidLimit": 4096,
    }
    reply = platform.invoke("/fn/evil/", "POST", json.dumps(plan).encode())
    assert reply.status == 200, reply
    report = reply.json()

    succeeded = {
        attack: got
        for attack, got in report.items()
        if attack not in ("uid", "scratch", "environment") and got is not None
    }
    assert succeeded == {}, json.dumps(succeeded, indent=2)
    assert report["uid"] not in (0, os.getuid()), report["uid"]
    assert report["scratch"] == "ok"  # its private scratch is writable
    leaked = [name for name in report["environment"] if name.startswith("FNMESH_PROXY")]
    assert leaked == [], leaked

    # nothing it tried changed a neighbour's code or policy
    assert {p.name: tree_digest(p) for p in artifacts.iterdir()} == before
    assert {p: p.read_bytes() for p in policy.rglob("*.json")} == policies
    assert platform.invoke("/fn/helper/").body == b"helped"

    # its legitimate work: reading its own secret, calling a function it is allowed to
    assert platform.invoke("/fn/evil/secret").json() == {"token": "EVIL-OWN", "mode": "0o400"}
    allow(platform, source="evil", destination="helper")

    def called() -> dict[str, object] | None:
        reply = platform.invoke("/fn/evil/call").json()
        return reply if reply["status"] == 200 else None

    reply = wait_for("evil to be allowed to call helper", called, timeout=15)
    assert reply == {"status": 200, "body": "helped"}, reply


def test_functions_get_uids_of_their_own(platform: Platform, tmp_path: Path) -> None:
    deploy_neighbours(platform, tmp_path)
    deploy_hostile(platform, tmp_path, "unused")
    evil = platform.invoke("/fn/evil/whoami").json()
    assert evil["uid"] not in (0, os.getuid())
    assert evil["gid"] == evil["uid"] and evil["groups"] == []
    uids = json.loads((platform.home / "sandbox" / "uids.json").read_text())
    assert uids["default/evil"] == evil["uid"]
    assert len(set(uids.values())) == len(uids) >= 3  # vault, helper, evil: one each


def test_a_forking_handler_leaves_no_process_after_delete(
    platform: Platform, tmp_path: Path
) -> None:
    marker = f"fnmesh-outlive-{os.getpid()}-{tmp_path.name}"
    deploy_hostile(platform, tmp_path, marker)
    assert platform.invoke("/fn/evil/outlive").json() == {"outlive": "started"}
    wait_for("the handler's child to run", lambda: with_marker(marker), timeout=10)
    platform.fn("delete", "evil", check=True)
    wait_for("no process of the deleted function", lambda: not with_marker(marker), timeout=30)


def test_replicas_die_with_the_platform(platform: Platform, tmp_path: Path) -> None:
    marker = f"fnmesh-outlive-{os.getpid()}-{tmp_path.name}"
    deploy_hostile(platform, tmp_path, marker)
    assert platform.invoke("/fn/evil/outlive").json() == {"outlive": "started"}
    wait_for("the handler's child to run", lambda: with_marker(marker), timeout=10)
    assert platform.process is not None
    started = children(platform.process.pid)  # replicas' runtimes and proxies, warm pools
    assert len(started) >= 2, started
    platform.process.kill()  # kill -9: no chance to stop anything
    platform.process.wait()
    wait_for("no process left by the killed platform", lambda: not with_marker(marker), 30)
    wait_for("the platform's children to go", lambda: not alive(started), 30)

    # the next start removes the folders the killed run left
    record = platform.home / "run" / "replicas.path"
    left = Path(record.read_text()) if record.exists() else platform.home / "run" / "replicas"
    assert any(left.iterdir())
    platform.start()
    assert not left.exists() or not any(left.iterdir())
    assert platform.invoke("/fn/evil/whoami").status == 200
