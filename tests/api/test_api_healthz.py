"""/healthz: 200 while every background task runs, 503 naming the failing ones."""

import asyncio
import sqlite3
from pathlib import Path

from apikit import running_api


async def test_healthz_names_a_failing_task_and_its_last_error(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with api.session.get(api.url + "/healthz") as response:
            assert response.status == 200
            body = await response.json()
        assert body["status"] == "ok"
        assert body["failing"] == []
        assert body["tasks"] == 2  # the controller's watch and worker

        broken = asyncio.Event()

        async def reconcile() -> None:
            broken.set()
            raise sqlite3.OperationalError("database or disk is full")

        api.tasks.start("revision default/hello-00001", reconcile)
        await asyncio.wait_for(broken.wait(), 5)
        await asyncio.sleep(0)
        async with api.session.get(api.url + "/healthz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["status"] == "failing"
        (failing,) = body["failing"]
        assert failing["name"] == "revision default/hello-00001"
        assert failing["state"] == "failing"
        assert failing["lastError"] == "database or disk is full"
        assert failing["consecutiveFailures"] >= 1
