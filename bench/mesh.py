"""What the mesh costs: direct to the function runtime vs through gateway + proxy (mTLS).

Starts a platform on a temporary home and deploys the ``hello`` example pinned to one
replica (and with the activator out of the path), waits until the platform is quiet,
then, side by side in one run (``--rounds`` of each, direct and mesh alternating; the best
round counts, since others' load on a shared machine only makes a run worse):

- a fixed rate (default 500 requests/s, open loop: requests leave on schedule whatever
  the answers do) from a small client on ``fnmesh.platform.http``: p50 and p99;
- the maximum rate, ``wrk -t2 -c32 --latency``: requests/s, p50, p99, and the CPU each
  process spent per request (from ``/proc``);
- the replica proxy's resident memory (``VmRSS``) while idle, before and after the load.

"Direct" is the function runtime's own port (found from the replica's pid); "mesh" is the
gateway's URL of the function, which reaches the runtime through the replica's proxy over
mTLS. The goals are printed next to the numbers: added p50 <= 1 ms, added p99 <= 5 ms,
mesh throughput >= 50 % of direct, idle proxy RSS <= 30 MB. With ``--profile DIR``, a
further max-rate run is sampled with py-spy in the gateway (the ``fn up`` process) and the
proxy, and the functions with the most samples are printed.

    .venv/bin/python bench/mesh.py [--seconds 5] [--rounds 3] [--rate 500] [--connections 32]
                                   [--profile DIR]

Needs Linux (``/proc``) and ``wrk`` (py-spy for ``--profile``). About a minute with the
defaults; keep runs short on shared machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.e2e import EXAMPLES, Platform, http, wait_for

from fnmesh.platform.http import ConnectionPool, Request, UpstreamError

NS = "/apis/fnmesh.dev/v1alpha1/namespaces/default"
PINNED = "scale:\n  min: 1\n  max: 1\n  targetBurstCapacity: 0\n"
GOAL_P50_MS, GOAL_P99_MS, GOAL_THROUGHPUT, GOAL_RSS_MB = 1.0, 5.0, 0.5, 30.0
TICKS = os.sysconf("SC_CLK_TCK")


# -- processes and sockets, from /proc --------------------------------------------------


def _listening_inodes() -> dict[int, int]:
    """Socket inode -> port of every listening TCP socket."""
    found: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                cells = line.split()
                if cells[3] == "0A":  # LISTEN
                    found[int(cells[9])] = int(cells[1].rsplit(":", 1)[1], 16)
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def listening_ports(pid: int) -> set[int]:
    listening = _listening_inodes()
    return {listening[inode] for inode in _socket_inodes(pid) if inode in listening}


def listener_pid(port: int) -> int:
    """The process listening on ``port``."""
    inodes = {inode for inode, p in _listening_inodes().items() if p == port}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _socket_inodes(int(entry)) & inodes:
                    return int(entry)
            except OSError:
                continue
    raise SystemExit(f"no process listens on port {port}")


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    assert match, f"no VmRSS for pid {pid}"
    return int(match.group(1)) / 1024


def pss_mb(pid: int) -> float | None:
    """Proportional set size: shared pages (libpython, libcrypto...) divided among users."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def family_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the platform and its replicas)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if int(entry) == pid or parent == pid:
            total += cpu_seconds(int(entry))
    return total


def settle(pid: int, timeout: float = 30.0) -> None:
    """Wait until the platform is quiet (warm pools refilled): < 5 % of a CPU for 0.5 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = family_cpu_seconds(pid)
        time.sleep(0.5)
        if family_cpu_seconds(pid) - before < 0.025:
            return
    print("  (the platform did not become quiet; measuring anyway)")


# -- load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us: dict[str, float]  # process -> CPU microseconds per request


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def _fixed_rate(url: str, rate: float, seconds: float) -> Run:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/").encode() + (b"?" + parts.query.encode() if parts.query else b"")
    pool = ConnectionPool()
    latencies: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            response = await pool.request(host, port, Request("GET", target, []), timeout=10.0)
        except UpstreamError:
            errors += 1
            return
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            errors += 1

    total = int(rate * seconds)
    tasks: set[asyncio.Task[None]] = set()
    begin = time.perf_counter()
    for n in range(total):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    await pool.close()
    latencies.sort()
    return Run(
        total / elapsed,
        percentile(latencies, 0.50) * 1e3,
        percentile(latencies, 0.99) * 1e3,
        total,
        errors,
        {},
    )


def fixed_rate(url: str, rate: float, seconds: float) -> Run:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_fixed_rate(url, rate, seconds))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    assert match, f"not a wrk duration: {text!r}"
    return float(match.group(1)) * _UNITS[match.group(2)]


def max_rate(url: str, seconds: float, connections: int, watch: dict[str, int]) -> Run:
    """wrk at full speed; CPU of the ``watch``ed processes per request."""
    before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    )
    spent = {name: cpu_seconds(pid) - before[name] for name, pid in watch.items()}
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(
        rps,
        _ms(latency["50"]),
        _ms(latency["99"]),
        requests,
        int(errors.group(1)) if errors else 0,
        {name: cpu / requests * 1e6 for name, cpu in spent.items()},
    )


# -- profiling --------------------------------------------------------------------------


def profile(url: str, seconds: float, connections: int, pids: dict[str, int], out: Path) -> None:
    """A max-rate run sampled by py-spy in each of ``pids``; top functions by own samples."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.mkdir(parents=True, exist_ok=True)
    samplers = {
        name: subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                f"{seconds + 1:g}",
                "--rate",
                "250",
                "--nonblocking",
                "--format",
                "raw",
                "-o",
                str(out / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    }
    time.sleep(0.5)
    max_rate(url, seconds, connections, {})
    for name, sampler in samplers.items():
        sampler.wait(60)
        print(f"\nprofile of the {name} ({out / (name + '.txt')}), most samples of their own:")
        for frame, share in top_frames(out / f"{name}.txt"):
            print(f"  {share:5.1%}  {frame}")


def top_frames(collapsed: Path, count: int = 15) -> list[tuple[str, float]]:
    own: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            own[stack.rsplit(";", 1)[-1]] += int(samples)
    total = sum(own.values()) or 1
    return [(frame, n / total) for frame, n in own.most_common(count)]


# -- the run ----------------------------------------------------------------------------


def _goal(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--rate", type=float, default=500.0, help="the fixed rate, requests/s")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each kind, alternating; the best counts"
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="also profile with py-spy")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "home").mkdir()
        platform = Platform(root / "home")
        platform.start()
        try:
            return measure(platform, root, args)
        finally:
            platform.stop()


def measure(platform: Platform, root: Path, args: argparse.Namespace) -> int:
    folder = root / "hello"
    shutil.copytree(EXAMPLES / "hello", folder)
    with (folder / "fn.yaml").open("a") as manifest:
        manifest.write(PINNED)
    platform.fn("deploy", str(folder), check=True)
    replica = wait_for("a ready replica", lambda: _ready_replica(platform))
    runtime_pid = int(replica["pid"])
    proxy_port = int(replica["address"].rpartition(":")[2])
    admin_port = urlsplit(replica["metricsUrl"]).port
    proxy_pid = listener_pid(proxy_port)
    (runtime_port,) = listening_ports(runtime_pid)
    assert platform.process is not None
    pids = {"gateway": platform.process.pid, "proxy": proxy_pid, "runtime": runtime_pid}
    direct = f"http://127.0.0.1:{runtime_port}/?name=bench"
    mesh = f"{platform.gateway}/fn/hello/?name=bench"
    assert http("GET", direct).body == http("GET", mesh).body == b"Hello, bench!\n"
    settle(pids["gateway"])
    rss_before, pss_before = rss_mb(proxy_pid), pss_mb(proxy_pid)

    print(f"fnmesh mesh benchmark: {os.cpu_count()} CPUs, hello example, 1 replica")
    print(f"  direct  {direct}  (runtime pid {runtime_pid})")
    print(f"  mesh    {mesh}  (proxy pid {proxy_pid}, inbound :{proxy_port}, admin :{admin_port})")
    print(f"  {args.rounds} rounds of each run, direct and mesh alternating; the best round counts")
    # warm up: connections, caches, the first certificate checks
    fixed_rate(direct, args.rate, 1.0)
    fixed_rate(mesh, args.rate, 1.0)

    fixed_runs: dict[str, list[Run]] = {"direct": [], "mesh": []}
    full_runs: dict[str, list[Run]] = {"direct": [], "mesh": []}
    for _ in range(args.rounds):
        for name, url in _pair(direct, mesh):
            fixed_runs[name].append(fixed_rate(url, args.rate, args.seconds))
    for _ in range(args.rounds):
        for name, url in _pair(direct, mesh):
            full_runs[name].append(max_rate(url, args.seconds, args.connections, pids))
    fixed = {name: best(runs) for name, runs in fixed_runs.items()}
    full = {name: best(runs) for name, runs in full_runs.items()}
    time.sleep(1.0)
    rss_after = rss_mb(proxy_pid)

    report(args, fixed, full, rss_before, rss_after)
    if pss_before is not None:
        print(f"  (its PSS before the load, shared libraries shared out: {pss_before:.1f} MB)")
    if args.profile is not None:
        watched = {"gateway": pids["gateway"], "proxy": pids["proxy"]}
        profile(mesh, args.seconds, args.connections, watched, args.profile)
    return 0


def report(
    args: argparse.Namespace,
    fixed: dict[str, Run],
    full: dict[str, Run],
    rss_before: float,
    rss_after: float,
) -> None:
    d, m = fixed["direct"], fixed["mesh"]
    added_p50, added_p99 = m.p50_ms - d.p50_ms, m.p99_ms - d.p99_ms
    print(f"\nfixed rate, {args.rate:g} requests/s for {args.seconds:g}s (open loop):")
    print(f"  {'':8}{'achieved':>10}{'p50':>10}{'p99':>10}{'errors':>8}")
    for name, run in fixed.items():
        print(f"  {name:8}{run.rps:>10.0f}{run.p50_ms:>8.2f}ms{run.p99_ms:>8.2f}ms{run.errors:>8}")
    print(
        f"  p50: mesh/direct {m.p50_ms / d.p50_ms:.2f}, added {added_p50:+.2f} ms"
        f" (goal <= {GOAL_P50_MS:g} ms): {_goal(added_p50 <= GOAL_P50_MS)}"
    )
    print(
        f"  p99: mesh/direct {m.p99_ms / d.p99_ms:.2f}, added {added_p99:+.2f} ms"
        f" (goal <= {GOAL_P99_MS:g} ms): {_goal(added_p99 <= GOAL_P99_MS)}"
    )

    d, m = full["direct"], full["mesh"]
    ratio = m.rps / d.rps
    print(f"\nmaximum rate, wrk -t2 -c{args.connections} for {args.seconds:g}s:")
    print(f"  {'':8}{'req/s':>10}{'p50':>10}{'p99':>10}{'errors':>8}   CPU per request")
    for name, run in full.items():
        cpu = ", ".join(f"{who} {us:.0f} µs" for who, us in run.cpu_us.items() if us >= 1)
        print(
            f"  {name:8}{run.rps:>10.0f}{run.p50_ms:>8.2f}ms{run.p99_ms:>8.2f}ms"
            f"{run.errors:>8}   {cpu}"
        )
    print(
        f"  throughput: mesh/direct {ratio:.2f} (goal >= {GOAL_THROUGHPUT:.2f}):"
        f" {_goal(ratio >= GOAL_THROUGHPUT)}"
    )
    cpu_direct, cpu_mesh = d.cpu_us.get("runtime", 0.0), sum(m.cpu_us.values())
    if cpu_direct:
        print(f"  CPU per request: mesh/direct {cpu_mesh / cpu_direct:.2f} (wrk's own not counted)")

    worst = max(rss_before, rss_after)
    print(
        f"\nidle proxy RSS: {rss_before:.1f} MB before the load, {rss_after:.1f} MB after;"
        f" {worst / GOAL_RSS_MB:.2f} of the goal (<= {GOAL_RSS_MB:g} MB):"
        f" {_goal(worst <= GOAL_RSS_MB)}"
    )


def best(runs: list[Run]) -> Run:
    """The best of each measure over ``runs`` (others' load on a shared machine only ever
    makes a run worse): highest rate, lowest percentiles, lowest CPU."""
    return Run(
        max(r.rps for r in runs),
        min(r.p50_ms for r in runs),
        min(r.p99_ms for r in runs),
        sum(r.requests for r in runs),
        sum(r.errors for r in runs),
        {name: min(r.cpu_us[name] for r in runs) for name in runs[0].cpu_us},
    )


def _pair(direct: str, mesh: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("direct", direct), ("mesh", mesh)


def _ready_replica(platform: Platform) -> dict[str, str] | None:
    reply = http("GET", f"{platform.api}{NS}/revisions?function=hello", headers=platform.auth)
    for revision in reply.json()["items"]:
        for replica in revision["status"].get("replicas", []):
            if replica.get("ready") and replica.get("metricsUrl") and replica.get("pid"):
                return dict(replica)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
