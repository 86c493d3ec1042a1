"""A Function applied through the API is held to the platform's resource maximums."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apikit import running_api

from fnmesh.platform.model.resource_policy import ResourcePolicy

Gi = 1024**3


def hello(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "fnmesh.dev/v1alpha1",
        "kind": "Function",
        "metadata": {"name": "hello"},
        "spec": {"handler": "main:handle", "resources": resources},
    }


async def test_an_apply_over_the_maximum_is_refused_naming_field_value_and_fix(
    tmp_path: Path,
) -> None:
    policy = ResourcePolicy(max_memory=4 * Gi, max_cpu=2000, max_pids=4096)
    async with running_api(tmp_path, controller=False, resources=policy) as api:
        status, body = await api.call("POST", "/functions", hello({"memory": "8Gi", "cpu": 3}))
        assert status == 422, body
        causes = {c["field"]: c["message"] for c in body["details"]["causes"]}
        assert set(causes) == {"spec.resources.memory", "spec.resources.cpu"}
        assert (
            "asks for 8Gi, above this platform's maximum of 4Gi" in causes["spec.resources.memory"]
        )
        assert "ask for at most 2" in causes["spec.resources.cpu"]

        status, body = await api.call("POST", "/functions", hello({"memory": "1Gi", "cpu": "2"}))
        assert status == 201, body
        assert body["spec"]["resources"] == {"memory": Gi, "cpu": 2.0}
