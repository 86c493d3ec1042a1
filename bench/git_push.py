"""Time from `git push` of a code-only change to the new revision serving.

Starts a platform on a temporary home, makes a git work tree of the `hello` example, adds
the `fn` remote with `fn git-remote hello` and pushes it once; then changes the code N
times: each run commits, times `git push fn main` (a real git client; the push returns
once the new revision is ready) plus polling the gateway until the new output is served.
Prints every run (the push alone, and push to first 200) and the median. Goal: under 3 s.

    .venv/bin/python bench/git_push.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "git"))

from gitkit import WorkTree, git_env
from support.e2e import EXAMPLES, Platform


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        platform = Platform(home)
        platform.start()
        try:
            work = WorkTree(root / "hello", {**platform.env(), **git_env(root / "user")})
            sources = {p.name: p.read_text() for p in (EXAMPLES / "hello").iterdir()}
            work.commit(sources)
            subprocess.run(
                [sys.executable, "-m", "fnmesh.platform.cli", "git-remote", "hello"],
                cwd=work.path,
                env=work.env,
                check=True,
                capture_output=True,
            )
            work.run("push", "--quiet", "fn", "main")
            for run in range(1, args.runs + 1):
                marker = f"Hello{run}"
                work.commit({"main.py": sources["main.py"].replace("Hello", marker)})
                start = time.perf_counter()
                pushed = work.run("push", "--quiet", "fn", "main", check=False)
                push_done = time.perf_counter() - start
                if pushed.code != 0:
                    raise SystemExit(f"run {run}: the push failed:\n{pushed.text}")
                while True:
                    reply = platform.invoke("/fn/hello/")
                    if reply.status == 200 and marker.encode() in reply.body:
                        break
                    if time.perf_counter() - start > 60:
                        raise SystemExit(f"run {run}: new output never served")
                    time.sleep(0.005)
                elapsed = time.perf_counter() - start
                times.append(elapsed)
                print(
                    f"run {run}: {elapsed * 1000:.0f} ms (git push returned after "
                    f"{push_done * 1000:.0f} ms)",
                    flush=True,
                )
        finally:
            platform.stop()
    median = statistics.median(times)
    print(
        f"git push -> new revision serving: median {median * 1000:.0f} ms over {len(times)} "
        f"runs (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); "
        f"goal < 3000 ms: {'met' if median < 3 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
