"""Scale to zero and back, end to end: a real `fn up`, real replicas, real load.

One platform serves the whole module; its autoscaler decides every 0.25 s with short
windows (config.yaml), and each test deploys a function of its own with the windows its
scenario needs in fn.yaml. Demand is made clear with `concurrency: 1` and handlers that
sleep: N clients in a closed loop keep N requests in flight.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.e2e import Platform, http, wait_for

pytestmark = pytest.mark.e2e

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
CONFIG = """\
autoscaler: {tick_interval: 0.25, stable_window: 6, scale_to_zero_grace_period: 2}
"""
SLEEPER = """\
import time


def handle(req):
    time.sleep(float(req.query.get("sleep", "0")))
    return "ok"
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("scaling") / "home"
    home.mkdir()
    (home / "config.yaml").write_text(CONFIG)
    running = Platform(home)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def deploy(platform: Platform, folder: Path, name: str, settings: str) -> str:
    """Deploy the sleeper as ``name`` with extra fn.yaml ``settings``; its revision."""
    folder = folder / name
    folder.mkdir()
    (folder / "fn.yaml").write_text(f"name: {name}\nhandler: main:handle\n{settings}")
    (folder / "main.py").write_text(SLEEPER)
    platform.fn("deploy", str(folder), check=True)
    return f"{name}-00001"


def delete(platform: Platform, name: str) -> None:
    http("DELETE", f"{platform.api}{NS}/functions/{name}", headers=platform.auth)


def status(platform: Platform, revision: str) -> dict[str, Any]:
    reply = http("GET", f"{platform.api}{NS}/revisions/{revision}", headers=platform.auth)
    assert reply.status == 200, reply
    found: dict[str, Any] = reply.json().get("status") or {}
    return found


def at_zero(platform: Platform, revision: str) -> bool:
    found = status(platform, revision)
    return not found.get("desiredReplicas") and not found.get("replicas")


def ready(platform: Platform, revision: str) -> int:
    return int(status(platform, revision).get("readyReplicas") or 0)


def metrics(platform: Platform, revision: str) -> dict[tuple[str, str], float]:
    """``(sample name, direction)`` -> value of the platform's metrics for ``revision``."""
    reply = http("GET", platform.api + "/metrics", headers=platform.auth)
    assert reply.status == 200, reply
    assert reply.headers["content-type"].startswith("text/plain")
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            if sample.labels.get("revision") == revision and "le" not in sample.labels:
                found[(sample.name, sample.labels.get("direction", ""))] = sample.value
    return found


async def eventually(
    what: str, check: Callable[[], Any], timeout: float, every: float = 0.05
) -> float:
    """Poll ``check`` (blocking, so in a thread) until truthy; seconds it took."""
    began = time.monotonic()
    while True:
        if await asyncio.to_thread(check):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


class Load:
    """Closed-loop clients: each sends its next request as soon as the last one is done."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.outcomes: Counter[int | str] = Counter()
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._clients: list[asyncio.Task[None]] = []

    def add(self, clients: int) -> None:
        self._clients += [asyncio.create_task(self._client()) for _ in range(clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._clients)

    async def _client(self) -> None:
        while not self._stop.is_set():
            try:
                async with self.session.get(self.url) as response:
                    body = await response.read()
                    self.outcomes[response.status] += 1
                    if response.status != 200:
                        self.failures.append(f"{response.status} {body[:200]!r}")
            except aiohttp.ClientError as error:
                self.outcomes[type(error).__name__] += 1
                self.failures.append(repr(error))


def session() -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=60)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)


async def test_a_function_at_zero_takes_200_concurrent_requests(
    platform: Platform, tmp_path: Path
) -> None:
    revision = deploy(
        platform,
        tmp_path,
        "burst",
        "scale: {stableWindow: 2s, scaleToZeroGracePeriod: 0s}\n",
    )
    await eventually("burst to be at zero", lambda: at_zero(platform, revision), 30)
    url = platform.gateway + "/fn/burst/?sleep=0.05"
    async with session() as client:

        async def one() -> tuple[int, bytes]:
            async with client.get(url) as response:
                return response.status, await response.read()

        answers = await asyncio.gather(*(one() for _ in range(200)))
    assert Counter(status for status, _ in answers) == {200: 200}, [
        a for a in answers if a[0] != 200
    ][:5]
    assert all(body == b"ok" for _, body in answers)
    counted = metrics(platform, revision)
    assert counted[("scale_events_total", "up")] >= 2  # the initial scale, and from zero
    assert counted[("cold_start_seconds_count", "")] >= 2
    delete(platform, "burst")


async def test_a_step_in_load_is_met_within_the_panic_window(
    platform: Platform, tmp_path: Path
) -> None:
    # Target: 1 request per replica (concurrency 1 at 100 % utilization). The panic window
    # is 10 % of a 90 s stable window: 9 s. It averages the per-second load of the seconds
    # that have reports, so after a step from 1 to 3 requests in flight its average passes
    # 2 -- and ceil(average / target) reaches 3 -- once there are more seconds of the new
    # load in it than of the old, plus up to a second for the first report to arrive.
    stable_window, clients_before, clients_after = 90.0, 1, 3
    panic_window = stable_window * 0.1
    revision = deploy(
        platform,
        tmp_path,
        "step",
        f"concurrency: 1\nscale: {{targetUtilization: 1.0, stableWindow: {stable_window:g}s}}\n",
    )
    wanted = math.ceil(clients_after / 1.0)  # ceil(demand / target)
    async with session() as client:
        load = Load(client, platform.gateway + "/fn/step/?sleep=1")
        load.add(clients_before)
        await eventually("one ready replica", lambda: ready(platform, revision) == 1, 30)
        await asyncio.sleep(1.0)  # a report of the steady load is in the windows
        assert status(platform, revision)["desiredReplicas"] == 1
        load.add(clients_after - clients_before)
        took = await eventually(
            f"{wanted} desired replicas",
            lambda: status(platform, revision).get("desiredReplicas", 0) >= wanted,
            timeout=panic_window + 5,
        )
        during = status(platform, revision)
        assert took <= panic_window, f"{took:.2f}s to decide; the panic window is {panic_window}s"
        assert during["panic"] is True and during["scalingReason"], during
        await eventually(
            f"{wanted} ready replicas", lambda: ready(platform, revision) >= wanted, 30
        )
        described = platform.fn("describe", "step", check=True).stdout
        await load.stop()
    assert not load.failures, (load.outcomes, load.failures[:5])
    row = described.split("Scaling:\n")[1].splitlines()[1].split()
    assert row[0] == revision and row[3] == "yes", described
    assert row[5].endswith("ms") or row[5].endswith("s"), described  # the last cold start
    delete(platform, "step")


async def test_idle_goes_back_to_zero_after_the_grace_period(
    platform: Platform, tmp_path: Path
) -> None:
    stable_window, grace = 3.0, 3.0
    revision = deploy(
        platform,
        tmp_path,
        "idle",
        f"scale: {{stableWindow: {stable_window:g}s, scaleToZeroGracePeriod: {grace:g}s}}\n",
    )
    async with session() as client:
        load = Load(client, platform.gateway + "/fn/idle/?sleep=0.02")
        load.add(2)
        await eventually("a ready replica", lambda: ready(platform, revision) >= 1, 30)
        await asyncio.sleep(1.5)
        await load.stop()
    stopped = time.monotonic()
    assert load.outcomes[200] > 0 and not load.failures, (load.outcomes, load.failures[:5])
    took = await eventually(
        "idle to be back at zero",
        lambda: at_zero(platform, revision),
        timeout=stable_window + grace + 10,
    )
    assert time.monotonic() - stopped >= grace, "scaled to zero before the grace period"
    assert took <= stable_window + grace + 5
    counted = metrics(platform, revision)
    assert counted[("scale_events_total", "down")] >= 1
    delete(platform, "idle")


async def test_kill_9_of_a_replica_under_load_loses_no_idempotent_request(
    platform: Platform, tmp_path: Path
) -> None:
    revision = deploy(platform, tmp_path, "steady", "scale: {min: 2, max: 2}\n")
    await eventually("two ready replicas", lambda: ready(platform, revision) == 2, 30)
    before = metrics(platform, revision)
    async with session() as client:
        load = Load(client, platform.gateway + "/fn/steady/?sleep=0.05")
        load.add(8)
        await eventually("traffic", lambda: load.outcomes[200] >= 50, 30)
        victim = status(platform, revision)["replicas"][0]
        os.kill(int(victim["pid"]), signal.SIGKILL)

        def replaced() -> bool:
            replicas = status(platform, revision).get("replicas") or []
            names = {r["name"] for r in replicas if r.get("ready")}
            return len(names) == 2 and victim["name"] not in names

        await eventually("the killed replica to be replaced", replaced, 30)
        served = load.outcomes[200]
        await eventually(
            "traffic after the replacement", lambda: load.outcomes[200] > served + 50, 30
        )
        await load.stop()
    assert not load.failures, (load.outcomes, load.failures[:5])
    after = metrics(platform, revision)
    # a restart is one more cold start, never a scale event
    assert after[("cold_start_seconds_count", "")] == before[("cold_start_seconds_count", "")] + 1
    for direction in ("up", "down"):
        key = ("scale_events_total", direction)
        assert after.get(key) == before.get(key), (before, after)
    delete(platform, "steady")
    wait_for("steady to be gone", lambda: platform.invoke("/fn/steady/").status == 404)
