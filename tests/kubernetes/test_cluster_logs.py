"""``fn logs`` on a cluster: replica output read from the pods' logs, in the API's shape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import kmock
import pytest
from kmockapi import ApiThread, KubeApi

from fnmesh.platform.cluster.pod_logs import PodLogs, log_line
from fnmesh.platform.store.kubernetes import KubeClient

PODS = "/api/v1/namespaces/default/pods"
LOGS = {
    "hello-00001-aaaaa": [
        "2026-11-25T21:20:01.123456789Z started",
        "2026-11-25T21:20:03.5Z handled /a",
    ],
    "hello-00001-bbbbb": ["2026-11-25T21:20:02Z started", "2026-11-25T21:20:04.000000001Z bye"],
}
FOLLOWED = {"hello-00001-aaaaa": ["2026-11-25T21:21:00Z later on a"]}


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        ("2026-11-25T21:20:01.123456789Z hi there", "2026-11-25T21:20:01.123Z p stdout: hi there"),
        ("2026-11-25T21:20:01.5Z hi", "2026-11-25T21:20:01.500Z p stdout: hi"),
        ("2026-11-25T21:20:01Z hi", "2026-11-25T21:20:01.000Z p stdout: hi"),
        ("2026-11-25T21:20:01Z ", "2026-11-25T21:20:01.000Z p stdout: "),
    ],
)
def test_log_lines_take_the_apis_shape(raw: str, line: str) -> None:
    assert log_line(raw, "p") == line


def pod(name: str, function: str = "hello") -> dict[str, Any]:
    labels = {"fnmesh.dev/function": function}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}}


def logs_of(request: kmock.Request) -> bytes:
    name = request.url.path.split("/")[-2]
    assert request.params.get("container") == "function"
    assert request.params.get("timestamps") == "true"
    if request.params.get("follow") == "true":
        return "".join(f"{line}\n" for line in FOLLOWED.get(name, [])).encode()
    tail = int(request.params.get("tailLines", "1000"))
    return "".join(f"{line}\n" for line in LOGS[name][-tail:]).encode()


@pytest.fixture
def logs() -> Iterator[PodLogs]:
    api = KubeApi()
    for name in LOGS:
        api[f"get {PODS}/{name}/log"] << logs_of
    with ApiThread(api, namespaces=("default",)) as cluster:
        for name in LOGS:
            cluster.request("POST", PODS, pod(name))
        cluster.request("POST", PODS, pod("other-00001-ccccc", function="other"))
        yield PodLogs(KubeClient(cluster.api_client("api")))


def test_tail_merges_the_replicas_by_time(logs: PodLogs) -> None:
    assert logs.tail("default", "hello", 3) == [
        "2026-11-25T21:20:02.000Z hello-00001-bbbbb stdout: started",
        "2026-11-25T21:20:03.500Z hello-00001-aaaaa stdout: handled /a",
        "2026-11-25T21:20:04.000Z hello-00001-bbbbb stdout: bye",
    ]
    assert logs.tail("default", "hello", 0) == []
    assert logs.tail("default", "nobody", 10) == []


async def test_follow_starts_with_the_tail_then_streams(logs: PodLogs) -> None:
    lines: list[str] = []

    async def collect() -> None:
        async for line in logs.follow("default", "hello", 1):
            lines.append(line)

    task = asyncio.create_task(collect())
    deadline = asyncio.get_running_loop().time() + 10
    while len(lines) < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lines == [
        "2026-11-25T21:20:04.000Z hello-00001-bbbbb stdout: bye",
        "2026-11-25T21:21:00.000Z hello-00001-aaaaa stdout: later on a",
    ]
