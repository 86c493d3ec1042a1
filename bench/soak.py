"""Soak: mixed traffic, deploys, canary rollouts and replica kills for a while.

Starts a platform on a temporary home and deploys two functions: `steady` (2 to 4
replicas, immediate rollouts) and `canary` (canary rollouts, 50 % steps every second).
Then, for ``--minutes``, GETs go to both from a few threads while, in turn:

- every ``--kill-every`` seconds one process of a `steady` replica (its runtime or its
  proxy, alternately) is killed with SIGKILL;
- every ``--deploy-every`` seconds a new version of `steady` and of `canary` is deployed
  (so a canary rollout runs under load).

Prints requests sent / succeeded / failed by cause, the platform's RSS, open file
descriptors and process count at the start (after a warm-up that deploys each function
once, so the baseline has done everything once) and at the end (after the functions
settle), and whether the goals hold: no failed idempotent request, RSS growth
<= 10 %, no leaked processes or descriptors.

    .venv/bin/python bench/soak.py [--minutes 10] [--kill-every 15] [--deploy-every 30]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.e2e import Platform, http, wait_for
from support.load import Load
from support.procs import descendants, proxy_of

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
MANIFESTS = {
    "steady": "name: steady\nhandler: main:handle\nscale: {min: 2, max: 4}\n",
    "canary": (
        "name: canary\nhandler: main:handle\n"
        "rollout: {strategy: canary, stepWeight: 50, maxWeight: 50, interval: 1s, threshold: 3}\n"
    ),
}
SOURCE = "VERSION = {version!r}\n\n\ndef handle(req):\n    return VERSION\n"
PER_REPLICA = 4  # shim, init and runtime in the sandbox; the proxy


def deploy(platform: Platform, root: Path, name: str, version: int) -> None:
    folder = root / name
    folder.mkdir(exist_ok=True)
    (folder / "fn.yaml").write_text(MANIFESTS[name])
    (folder / "main.py").write_text(SOURCE.format(version=f"{name} v{version}"))
    platform.fn("deploy", str(folder), check=True)


def revisions(platform: Platform, name: str) -> list[dict[str, Any]]:
    reply = http("GET", f"{platform.api}{NS}/revisions", headers=platform.auth)
    items: list[dict[str, Any]] = reply.json().get("items") or []
    return [r for r in items if r["spec"].get("function") == name]


def replicas(platform: Platform, name: str) -> list[dict[str, Any]]:
    found = []
    for revision in revisions(platform, name):
        found += [r for r in (revision.get("status") or {}).get("replicas") or [] if r["ready"]]
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle(platform: Platform) -> int:
    """Wait until both functions run their steady replica counts; the expected process
    count of the platform then."""

    def settled() -> int | None:
        steady, canary = replicas(platform, "steady"), replicas(platform, "canary")
        if len(steady) != 2 or len(canary) != 1:
            return None
        return (len(steady) + len(canary)) * PER_REPLICA

    expected: int = wait_for("the functions to settle", settled, timeout=180, every=0.5)
    return expected


def snapshot(pid: int) -> dict[str, float]:
    return {"rss": rss_mb(pid), "fds": fds(pid), "processes": len(descendants(pid))}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=15.0)
    parser.add_argument("--deploy-every", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before the baseline")
    parser.add_argument("--log", help="write the platform's log to this file")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        (home / "config.yaml").write_text(
            "autoscaler: {stable_window: 10, scale_to_zero_grace_period: 0}\n"
            + os.environ.get("SOAK_EXTRA_CONFIG", "")
        )
        platform = Platform(home)
        platform.start()
        assert platform.process is not None
        pid = platform.process.pid
        try:
            for name in MANIFESTS:
                deploy(platform, root, name, 1)
            steady = Load(platform.gateway + "/fn/steady/", threads=args.threads).start()
            canary = Load(platform.gateway + "/fn/canary/", threads=1).start()
            # warm-up: one deploy of each (a rollout, a retired revision), pools refilled,
            # connections pooled, telemetry windows filling: the baseline is a platform
            # that has done each thing once, so what grows after it is what leaks
            for name in MANIFESTS:
                deploy(platform, root, name, 2)
            time.sleep(args.warmup)
            settle(platform)
            start = snapshot(pid)
            began = time.monotonic()
            next_kill, next_deploy = began + args.kill_every, began + args.deploy_every
            kills, deploys, version, victim = 0, 0, 2, "runtime"
            events: list[tuple[float, str]] = []
            while time.monotonic() - began < args.minutes * 60:
                now = time.monotonic()
                if now >= next_kill:
                    up = replicas(platform, "steady")
                    if up:
                        chosen = rng.choice(up)
                        target = chosen["pid"] if victim == "runtime" else proxy_of(chosen)
                        if target:
                            os.kill(int(target), signal.SIGKILL)
                            kills += 1
                            events.append(
                                (time.monotonic(), f"killed the {victim} of {chosen['name']}")
                            )
                        victim = "proxy" if victim == "runtime" else "runtime"
                    next_kill = now + args.kill_every
                if now >= next_deploy:
                    version += 1
                    for name in MANIFESTS:
                        events.append((time.monotonic(), f"deploying {name} v{version}"))
                        deploy(platform, root, name, version)
                    deploys += 2
                    next_deploy = time.monotonic() + args.deploy_every
                time.sleep(0.2)
            steady.stop()
            canary.stop()
            expected = settle(platform)
            time.sleep(3.0)  # retired revisions drain and go
            end = snapshot(pid)
        finally:
            platform.stop()
            if args.log:
                Path(args.log).write_text(platform.logs())
    sent = steady.requests + canary.requests
    failed = steady.failures + canary.failures
    causes = collections.Counter(f.split(":")[0] for f in failed)
    print(
        f"soak: {args.minutes:g} min, {kills} replica kills, {deploys} deploys "
        f"(with {deploys // 2} canary rollouts)"
    )
    print(f"  requests sent {sent}, succeeded {sent - len(failed)}, failed {len(failed)}")
    for cause, count in causes.most_common():
        print(f"    {count:6d}  {cause}")
    for load, name in ((steady, "steady"), (canary, "canary")):
        for at, failure in zip(load.failed_at, load.failures, strict=True):
            near = [f"{t - at:+.1f}s {what}" for t, what in events if abs(t - at) < 40]
            print(f"  failed {name} request at {at - began:.1f}s: {failure[:120]}")
            print("    near: " + "; ".join(near))
    growth = (end["rss"] - start["rss"]) / start["rss"] * 100
    print(
        f"  platform RSS {start['rss']:.1f} MB -> {end['rss']:.1f} MB ({growth:+.1f} %); "
        f"fds {start['fds']:.0f} -> {end['fds']:.0f}; processes {start['processes']:.0f} -> "
        f"{end['processes']:.0f} (replicas need {expected}, plus warm pools)"
    )
    ok = not failed and growth <= 10 and end["processes"] <= start["processes"]
    ok = ok and end["fds"] <= start["fds"] + 5
    print(f"  goals (0 failed, RSS growth <= 10 %, no leaks): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
