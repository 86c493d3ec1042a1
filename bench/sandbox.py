"""What the sandbox costs: cold starts and throughput with and without it, side by side.

Each round starts two platforms one after the other on fresh homes -- one sandboxing
replicas (the default), one with ``--unsafe-no-sandbox`` -- and measures on each:

- cold starts of the `hello` example (``--runs`` per round): a request at zero to its
  response over the whole path (as in bench/cold_start.py);
- warm throughput through the gateway with ``wrk -c32 -t2 -d<seconds>`` on one replica.

Prints every round, then the median round with its range, and sandboxed/unsandboxed
ratios. Goal: cold start p50 with the sandbox <= 50 ms.

    .venv/bin/python bench/sandbox.py [--rounds 3] [--runs 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cold_start import CONFIG, cold_starts, percentile
from support.e2e import Platform, http, wait_for

MODES = {"sandboxed": (), "unsandboxed": ("--unsafe-no-sandbox",)}


def throughput(platform: Platform, seconds: int) -> float:
    url = platform.gateway + "/fn/hello/"
    wait_for("hello to answer", lambda: http("GET", url).status == 200, 30)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run scripts/setup.sh")
    done = subprocess.run(
        [wrk, "-c32", "-t2", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    )
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"wrk printed no rate:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def one(mode: str, runs: int, seconds: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "config.yaml").write_text(CONFIG)
        platform = Platform(home, options=MODES[mode])
        platform.start()
        try:
            times = cold_starts(platform, runs, quiet=True)
            rate = throughput(platform, seconds)
        finally:
            platform.stop()
    return percentile(times, 0.5), percentile(times, 0.99), rate


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="cold starts per round and mode")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in MODES}
    for round_ in range(1, args.rounds + 1):
        for mode in MODES:
            p50, p99, rate = one(mode, args.runs, args.seconds)
            results[mode].append((p50, p99, rate))
            print(
                f"round {round_} {mode:11s}: cold start p50 {p50 * 1000:6.1f} ms "
                f"p99 {p99 * 1000:6.1f} ms   throughput {rate:8.0f} req/s",
                flush=True,
            )
    print(f"\nmedian round of {args.rounds} (range):")
    medians: dict[str, tuple[float, float, float]] = {}
    for mode, rows in results.items():
        columns = list(zip(*rows, strict=True))
        medians[mode] = (
            statistics.median(columns[0]),
            statistics.median(columns[1]),
            statistics.median(columns[2]),
        )
        p50s, p99s, rates = columns
        print(
            f"  {mode:11s}: cold start p50 {medians[mode][0] * 1000:.1f} ms "
            f"({min(p50s) * 1000:.1f}-{max(p50s) * 1000:.1f}), "
            f"p99 {medians[mode][1] * 1000:.1f} ms "
            f"({min(p99s) * 1000:.1f}-{max(p99s) * 1000:.1f}), "
            f"throughput {medians[mode][2]:.0f} req/s ({min(rates):.0f}-{max(rates):.0f})"
        )
    boxed, bare = medians["sandboxed"], medians["unsandboxed"]
    print(
        f"  sandboxed / unsandboxed: cold start p50 x{boxed[0] / bare[0]:.2f}, "
        f"p99 x{boxed[1] / bare[1]:.2f}, throughput x{boxed[2] / bare[2]:.2f}"
    )
    met = boxed[0] <= 0.050
    print(f"  goal: sandboxed cold start p50 <= 50 ms: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
