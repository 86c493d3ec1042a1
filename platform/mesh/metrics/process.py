"""The process' own families, as Prometheus' client libraries export them everywhere.

``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
``process_virtual_memory_bytes``, ``process_start_time_seconds``, ``process_open_fds`` and
``process_max_fds``, read from ``/proc`` on each scrape. Where there is no ``/proc`` (not
Linux) there are none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from fnmesh.platform.mesh.metrics.exposition import Family, PrometheusCollector


def _boot_time(proc: Path) -> float | None:
    try:
        with (proc / "stat").open("rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _gauge(name: str, help: str, value: float) -> Family:
    family = Family(name, "gauge", help)
    family.add((), (), value)
    return family


class ProcessMetrics(PrometheusCollector):
    def __init__(self, proc: Path = Path("/proc"), pid: str = "self") -> None:
        self.proc = proc
        self.pid = pid
        self.ticks = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        self.page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.boot_time = _boot_time(proc)

    def families(self) -> Iterator[Family]:
        if self.boot_time is None:
            return
        folder = self.proc / self.pid
        try:
            parts = (folder / "stat").read_bytes().rsplit(b")", 1)[-1].split()
        except OSError:
            return
        yield _gauge(
            "process_virtual_memory_bytes", "Virtual memory size in bytes.", float(parts[20])
        )
        yield _gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            float(parts[21]) * self.page_size,
        )
        yield _gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            float(parts[19]) / self.ticks + self.boot_time,
        )
        cpu = Family(
            "process_cpu_seconds", "counter", "Total user and system CPU time spent in seconds."
        )
        cpu.add((), (), (float(parts[11]) + float(parts[12])) / self.ticks)
        yield cpu
        try:
            open_fds = len(os.listdir(folder / "fd"))
            max_fds = next(
                float(line.split()[3])
                for line in (folder / "limits").read_bytes().splitlines()
                if line.startswith(b"Max open files")
            )
        except (OSError, StopIteration, IndexError, ValueError):
            return
        yield _gauge("process_open_fds", "Number of open file descriptors.", open_fds)
        yield _gauge("process_max_fds", "Maximum number of open file descriptors.", max_fds)
