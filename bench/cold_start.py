"""Scale from zero and back: cold-start latency, and how long a 10x load step takes.

Starts a platform (`fn up`, a real process) on a temporary home whose autoscaler forgets
load after a second (``stable_window`` 1 s, no grace period, a decision every 0.1 s), so
an idle revision goes back to zero about two seconds after its last request -- through
the ordinary decisions, not a shortcut. Then:

1. Cold starts of the `hello` example, ``--runs`` times (50 by default): wait until the
   revision has no replica left, then time one request from send to response over the
   whole path: gateway -> activator (queued; pokes the autoscaler) -> decision -> runtime
   (warm runtime and proxy processes specialized, certificate issued) -> Revision status ->
   route table -> activator releases the request -> mTLS to the new replica's proxy ->
   handler. Prints p50/p90/p99/max, and the part the replica's own start took (the
   platform logs it per replica, and exports it as ``cold_start_seconds``).
2. A 10x load step on a function with ``concurrency: 1`` (one request per replica, at
   100 % target utilization) whose handler sleeps 0.5 s, with Knative's default windows
   (stable 60 s, panic 6 s): ``--base`` closed-loop clients until their replica count has
   settled, then ``10 * base`` clients at once. Prints the time from the step until the
   autoscaler wants 10 * base replicas, and until that many are ready.

    .venv/bin/python bench/cold_start.py [--runs 50] [--base 1] [--skip-step] [--log FILE]

Goals: cold start p50 <= 100 ms, p99 <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import statistics
import sys
import tempfile
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.e2e import EXAMPLES, Platform, http, wait_for

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
CONFIG = "autoscaler: {stable_window: 1, scale_to_zero_grace_period: 0, tick_interval: 0.1}\n"
STEP_MANIFEST = """\
name: step
handler: main:handle
concurrency: 1
scale: {targetUtilization: 1.0, stableWindow: 60s, scaleToZeroGracePeriod: 60s, max: 20}
"""
STEP_HANDLER = """\
import time


def handle(req):
    time.sleep(0.5)
    return "ok"
"""
READY_LINE = re.compile(r"replica (\S+) ready at \S+ in (\d+) ms")


def revision_status(platform: Platform, name: str) -> dict[str, Any]:
    reply = http("GET", f"{platform.api}{NS}/revisions/{name}", headers=platform.auth)
    if reply.status != 200:
        raise AssertionError(f"GET revision {name}: {reply.status} {reply.body[:200]!r}")
    status: dict[str, Any] = reply.json().get("status") or {}
    return status


def at_zero(platform: Platform, revision: str) -> bool:
    status = revision_status(platform, revision)
    return not status.get("replicas") and not status.get("desiredReplicas")


def timed_get(url: str) -> tuple[int, float]:
    parts = urlsplit(url)
    began = time.perf_counter()
    connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    return response.status, time.perf_counter() - began


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def cold_starts(platform: Platform, runs: int, *, quiet: bool = False) -> list[float]:
    platform.fn("deploy", str(EXAMPLES / "hello"), check=True)
    url = platform.gateway + "/fn/hello/"
    times: list[float] = []
    for run in range(1, runs + 1):
        try:
            wait_for("hello to be at zero", lambda: at_zero(platform, "hello-00001"), 30)
        except AssertionError:
            print(f"not at zero: {revision_status(platform, 'hello-00001')}")
            raise
        status, elapsed = timed_get(url)
        if status != 200:
            raise SystemExit(f"cold start {run}: status {status}\n{platform.logs()[-3000:]}")
        times.append(elapsed)
        if not quiet:
            print(f"cold start {run:3d}: {ms(elapsed)}", flush=True)
    return times


def deploy_step(platform: Platform, folder: Path) -> None:
    folder.mkdir()
    (folder / "fn.yaml").write_text(STEP_MANIFEST)
    (folder / "main.py").write_text(STEP_HANDLER)
    platform.fn("deploy", str(folder), check=True)


async def load_step(platform: Platform, base: int) -> tuple[float, float, int]:
    """Seconds from the step to 10 * base desired replicas and to that many ready."""
    import aiohttp

    url = platform.gateway + "/fn/step/"
    stop = asyncio.Event()
    failures: list[str] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    failures.append(str(response.status))

    def status() -> dict[str, Any]:
        return revision_status(platform, "step-00001")

    async def until(what: str, check: Any, timeout: float) -> float:
        await asyncio.to_thread(wait_for, what, check, timeout)
        return time.perf_counter() - began

    wanted = 10 * base
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        clients = [asyncio.create_task(client(session)) for _ in range(base)]
        await asyncio.to_thread(
            wait_for,
            f"step to settle at {base} ready replica(s)",
            lambda: status().get("readyReplicas") == base == status().get("desiredReplicas"),
            60,
        )
        await asyncio.sleep(1.0)
        began = time.perf_counter()
        clients += [asyncio.create_task(client(session)) for _ in range(wanted - base)]
        decided = await until(
            f"{wanted} desired", lambda: status().get("desiredReplicas", 0) >= wanted, 60
        )
        ready = await until(
            f"{wanted} ready", lambda: status().get("readyReplicas", 0) >= wanted, 60
        )
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
    if failures:
        print(f"load step: {len(failures)} requests failed: {failures[:5]}")
    return decided, ready, wanted


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--base", type=int, default=1, help="clients before the 10x step")
    parser.add_argument("--skip-step", action="store_true", help="only the cold starts")
    parser.add_argument("--log", help="write the platform's log to this file")
    args = parser.parse_args()
    step: tuple[float, float, int] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        (home / "config.yaml").write_text(CONFIG)
        platform = Platform(home)
        platform.start()
        try:
            times = cold_starts(platform, args.runs)
            starts = [int(m.group(2)) / 1000 for m in READY_LINE.finditer(platform.logs())]
            starts = starts[-len(times) :]
            if not args.skip_step:
                deploy_step(platform, root / "step")
                step = asyncio.run(load_step(platform, args.base))
        finally:
            platform.stop()
            if args.log:
                Path(args.log).write_text(platform.logs())
    p50, p90, p99 = (percentile(times, share) for share in (0.5, 0.9, 0.99))
    print(
        f"\ncold start, request at zero -> response ({len(times)} runs): p50 {ms(p50)}, "
        f"p90 {ms(p90)}, p99 {ms(p99)}, max {ms(max(times))}, mean {ms(statistics.mean(times))}"
    )
    if starts:
        print(
            f"  of which the replica's own start: p50 {ms(percentile(starts, 0.5))}, "
            f"p99 {ms(percentile(starts, 0.99))}"
        )
    met = p50 <= 0.100 and p99 <= 0.300
    print(f"  goals p50 <= 100 ms, p99 <= 300 ms: {'met' if met else 'NOT met'}")
    if step is not None:
        decided, ready, wanted = step
        print(
            f"10x load step ({args.base} -> {wanted} clients, concurrency 1, 0.5 s handler, "
            f"panic window 6 s): {wanted} replicas desired after {decided:.2f} s, "
            f"ready after {ready:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
