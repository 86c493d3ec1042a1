"""Functions calling functions through their proxies, authorized by SMI TrafficTargets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.backends import ApiBackend, Functions

pytestmark = pytest.mark.e2e

CALLER = """\
from fnmesh.functions import call


def handle(req):
    reply = call({callee!r}, "/items/42")
    return {{"status": reply.status, "body": reply.text}}
"""
CALLEE = "def handle(req):\n    return {'item': req.path}\n"


def let_in(backend: ApiBackend, source: str, destination: str) -> None:
    """A TrafficTarget letting ``source``'s replicas call ``destination``'s."""
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
    created = backend.create("traffictargets", target)
    assert created.status == 201, created


def called(backend: ApiBackend, path: str) -> dict[str, Any]:
    reply = backend.invoke(path)
    assert reply.status == 200, reply
    found: dict[str, Any] = reply.json()
    return found


@pytest.mark.lacking_on_kubernetes(
    reason="function-to-function calls are not wired: the pod's proxy has no egress socket "
    "nor destinations service, and POST .../traffictargets answers 500"
)
def test_a_function_calls_another(backend: ApiBackend, functions: Functions) -> None:
    functions.deploy("stock", CALLEE)
    functions.deploy("shop", CALLER.format(callee="stock"))
    let_in(backend, "shop", "stock")  # callers other than the gateway need a TrafficTarget
    answer = backend.wait_for(
        "shop to reach stock", lambda: (a := called(backend, "/fn/shop/"))["status"] == 200 and a
    )
    assert json.loads(answer["body"]) == {"item": "/items/42"}


@pytest.mark.lacking_on_kubernetes(
    reason="POST .../traffictargets answers 500 on a cluster (the store keeps no "
    "TrafficTarget), and function-to-function calls are not wired"
)
def test_a_traffic_target_lets_one_caller_in_and_not_another(
    backend: ApiBackend, functions: Functions
) -> None:
    functions.deploy("vault", CALLEE, "visibility: private\n")
    functions.deploy("teller", CALLER.format(callee="vault"))
    functions.deploy("thief", CALLER.format(callee="vault"))
    let_in(backend, "teller", "vault")
    answer = backend.wait_for(
        "the TrafficTarget to let teller in",
        lambda: (a := called(backend, "/fn/teller/"))["status"] == 200 and a,
    )
    assert json.loads(answer["body"]) == {"item": "/items/42"}
    assert called(backend, "/fn/thief/")["status"] == 403
