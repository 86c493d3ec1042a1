"""A function calls another through its own proxy, authorized by an SMI TrafficTarget."""

from __future__ import annotations

import json
from pathlib import Path

from support.e2e import Platform, http, wait_for

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"


def write(folder: Path, manifest: str, code: str) -> Path:
    folder.mkdir()
    (folder / "fn.yaml").write_text(manifest)
    (folder / "main.py").write_text(code)
    return folder


def test_a_function_calls_a_private_one_it_is_allowed_to(
    platform: Platform, tmp_path: Path
) -> None:
    callee = write(
        tmp_path / "inventory",
        "name: inventory\nhandler: main:handle\nvisibility: private\n",
        "def handle(req):\n    return {'item': req.path, 'caller': 'ok'}\n",
    )
    caller = write(
        tmp_path / "shop",
        "name: shop\nhandler: main:handle\n",
        "from fnmesh.functions import call\n\n"
        "def handle(req):\n"
        "    reply = call('inventory', '/items/42')\n"
        "    return {'status': reply.status, 'body': reply.text}\n",
    )
    platform.fn("deploy", str(callee), check=True)
    platform.fn("deploy", str(caller), check=True)

    # private: not reachable through the gateway without a token that may invoke it
    assert platform.invoke("/fn/inventory/").status == 401
    # no TrafficTarget yet: the callee's proxy refuses the caller's identity
    denied = platform.invoke("/fn/shop/").json()
    assert denied["status"] == 403, denied

    target = {
        "apiVersion": "access.smi-spec.io/v1alpha3",
        "kind": "TrafficTarget",
        "metadata": {"name": "shop-to-inventory"},
        "spec": {
            "destination": {"kind": "ServiceAccount", "name": "inventory"},
            "sources": [{"kind": "ServiceAccount", "name": "shop"}],
            "rules": [],
        },
    }
    created = http(
        "POST",
        f"{platform.api}{NS}/traffictargets",
        json.dumps(target).encode(),
        {**platform.auth, "Content-Type": "application/json"},
    )
    assert created.status == 201, created

    def allowed() -> dict[str, object] | None:
        reply = platform.invoke("/fn/shop/").json()
        return reply if reply["status"] == 200 else None

    reply = wait_for("the TrafficTarget to let shop call inventory", allowed, timeout=15)
    assert json.loads(str(reply["body"])) == {"item": "/items/42", "caller": "ok"}


def test_traffic_targets_are_checked(platform: Platform) -> None:
    bad = {
        "apiVersion": "access.smi-spec.io/v1alpha3",
        "kind": "TrafficTarget",
        "metadata": {"name": "x"},
        "spec": {"destination": {"kind": "Pod"}},
    }
    reply = http(
        "POST",
        f"{platform.api}{NS}/traffictargets",
        json.dumps(bad).encode(),
        {**platform.auth, "Content-Type": "application/json"},
    )
    assert reply.status == 422
    fields = {c["field"] for c in reply.json()["details"]["causes"]}
    assert {"spec.destination", "spec.sources"} <= fields
