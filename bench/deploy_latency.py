"""Time from `fn deploy` of a code-only change to the first 200 from the new revision.

Starts a platform on a temporary home, deploys the `hello` example once, then changes its
code N times; each run times `fn deploy` (a real CLI process) plus polling the gateway
until the new output is served. Prints every run and the median. Goal: under 2 s.

    .venv/bin/python bench/deploy_latency.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.e2e import EXAMPLES, Platform


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        platform = Platform(home)
        platform.start()
        try:
            folder = root / "hello"
            shutil.copytree(EXAMPLES / "hello", folder)
            platform.fn("deploy", str(folder), check=True)
            main_py = folder / "main.py"
            original = main_py.read_text()
            times = []
            for run in range(1, args.runs + 1):
                marker = f"Hello{run}"
                main_py.write_text(original.replace("Hello", marker))
                start = time.perf_counter()
                platform.fn("deploy", str(folder), check=True)
                while True:
                    reply = platform.invoke("/fn/hello/")
                    if reply.status == 200 and marker.encode() in reply.body:
                        break
                    if time.perf_counter() - start > 60:
                        raise SystemExit(f"run {run}: new output never served")
                    time.sleep(0.005)
                elapsed = time.perf_counter() - start
                times.append(elapsed)
                print(f"run {run}: {elapsed * 1000:.0f} ms", flush=True)
        finally:
            platform.stop()
    median = statistics.median(times)
    print(
        f"deploy -> first 200 from the new revision: median {median * 1000:.0f} ms "
        f"over {len(times)} runs (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); "
        f"goal < 2000 ms: {'met' if median < 2 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
