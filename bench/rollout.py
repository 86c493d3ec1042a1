"""Failed requests during a canary rollout under load, and how well weights hold.

Starts a platform on a temporary home and deploys a small function (it answers with its
version) with a canary rollout (25 % steps up to 50 %, 1 s intervals). Then, under
constant load from a few threads, deploys a second version and follows `fn rollout` until
it is promoted or rolled back, counting every request that did not answer 200. Finally it
pins the weights by hand (70/30) and sends N requests, comparing each revision's share
with its weight. Goals: no failed request; every share within 3 points of its weight.

    .venv/bin/python bench/rollout.py [--requests 10000] [--threads 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.e2e import Platform
from support.load import Load

MANIFEST = """\
name: bench
handler: main:handle
rollout: {strategy: canary, stepWeight: 25, maxWeight: 50, interval: 1s, threshold: 2}
"""
SOURCE = 'VERSION = {version!r}\n\n\ndef handle(req):\n    return VERSION + "\\n"\n'


def deploy(platform: Platform, folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fn.yaml").write_text(MANIFEST)
    (folder / "main.py").write_text(SOURCE.format(version=version))
    platform.fn("deploy", str(folder), check=True)


def rollout_under_load(platform: Platform, folder: Path, threads: int, least: int) -> int:
    """Deploy v2 under load; follow the rollout; return the failed-request count."""
    load = Load(platform.gateway + "/fn/bench/", threads=threads).start()
    started = time.perf_counter()
    try:
        deploy(platform, folder, "v2")
        done = platform.fn("rollout", "bench", "--poll", "0.2", "--timeout", "120", timeout=150)
        took = time.perf_counter() - started
        while load.requests < least and time.perf_counter() - started < 120:
            time.sleep(0.05)
    finally:
        load.stop()
    verdict = {0: "promoted"}.get(done.returncode, f"not promoted (exit {done.returncode})")
    print(f"rollout: {verdict} in {took:.1f}s; `fn rollout` said:", flush=True)
    for line in done.stdout.splitlines():
        print(f"  {line}")
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(load.answers.items()))
    print(
        f"under load: {load.requests} requests ({answers}); failed: {len(load.failures)}",
        flush=True,
    )
    for failure in load.failures[:5]:
        print(f"  {failure}")
    return len(load.failures)


def split_accuracy(platform: Platform, requests: int, threads: int) -> float:
    """Pin 70/30, send ``requests``; return the largest distance from a weight, in points."""
    platform.fn("traffic", "bench", "--set", "bench-00002=70", "bench-00001=30", check=True)
    load = Load(platform.gateway + "/fn/bench/", threads=threads).start(limit=requests)
    load.wait(timeout=300)
    load.stop()
    total = sum(load.answers.values())
    worst = 0.0
    for version, weight in (("v2", 70), ("v1", 30)):
        share = 100 * load.answers[version] / total if total else 0.0
        worst = max(worst, abs(share - weight))
        print(f"split: {version} weight {weight}% -> {share:.2f}% of {total} answers")
    print(f"split: failed {len(load.failures)}; largest distance {worst:.2f} points")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        platform = Platform(home)
        platform.start()
        try:
            folder = root / "bench"
            deploy(platform, folder, "v1")
            failed = rollout_under_load(platform, folder, args.threads, args.requests)
            worst = split_accuracy(platform, args.requests, args.threads)
        finally:
            platform.stop()
    goal_failed = "met" if not failed else "NOT met"
    goal_split = "met" if worst <= 3 else "NOT met"
    print(
        f"failed requests during the rollout: {failed} (goal 0: {goal_failed}); "
        f"split within {worst:.2f} points (goal 3: {goal_split})"
    )
    return 0 if not failed and worst <= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
