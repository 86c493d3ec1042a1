"""The log book writes off the event loop, within a bounded buffer, and drops (counting)
what it cannot write, e.g. on a full disk, instead of raising or blocking."""

from __future__ import annotations

import asyncio
import errno
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from fnmesh.platform.runtime.local.logbook import LogBook
from fnmesh.platform.runtime.local.logdrops import LogDrops


def stamp() -> str:
    return "T"


class DiskFull:
    """A writer that fails like a full disk, until told there is room again."""

    def __init__(self) -> None:
        self.full = True
        self.written: list[tuple[Path, bytes]] = []
        self.threads: set[str] = set()

    def __call__(self, path: Path, data: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written.append((path, data))


async def test_lines_are_written_to_the_functions_file_off_the_loop(tmp_path: Path) -> None:
    book = LogBook(tmp_path, stamp=stamp)
    book.write("team", "hello", "r1", "stdout", "one")
    book.write("team", "hello", "r1", "stderr", "two  ")
    await book.flush()
    assert (tmp_path / "team" / "hello.log").read_text() == "T r1 stdout: one\nT r1 stderr: two\n"
    assert book.tail("team", "hello", 1) == ["T r1 stderr: two"]
    await book.close()


async def test_a_full_disk_drops_and_counts_and_never_raises(tmp_path: Path) -> None:
    drops = LogDrops()
    disk = DiskFull()
    book = LogBook(tmp_path, stamp=stamp, writer=disk, drops=drops)
    for i in range(3):
        book.write("team", "hello", "r1", "stdout", f"line {i}")
    await book.flush()
    assert drops.lines("error") == 3
    assert drops.bytes("error") == 3 * len("T r1 stdout: line 0\n")
    assert disk.threads and not disk.threads & {threading.current_thread().name}
    disk.full = False  # room again: writing resumes
    book.write("team", "hello", "r1", "stdout", "back")
    await book.flush()
    assert disk.written == [(tmp_path / "team" / "hello.log", b"T r1 stdout: back\n")]
    await book.close()


async def test_a_writer_that_never_returns_costs_a_bounded_buffer(tmp_path: Path) -> None:
    drops = LogDrops()
    stuck = threading.Event()

    def hanging(path: Path, data: bytes) -> None:
        stuck.wait(10)

    book = LogBook(tmp_path, stamp=stamp, writer=hanging, drops=drops, max_pending_bytes=1000)
    for _ in range(1000):  # 20 bytes a line: 20 kB offered, while the writer hangs
        book.write("team", "hello", "r1", "stdout", "0123456")
    assert book.pending_bytes <= 1000
    assert drops.lines("backlog") >= 1000 - 2 * 1000 // 20
    stuck.set()
    await asyncio.wait_for(book.close(), 10)


async def test_followers_see_lines_once_they_are_written(tmp_path: Path) -> None:
    book = LogBook(tmp_path, stamp=stamp)
    book.write("team", "hello", "r1", "stdout", "first")
    await book.flush()
    lines = book.follow("team", "hello", 1)
    assert await anext(lines) == "T r1 stdout: first"
    following = asyncio.ensure_future(anext(lines))
    await asyncio.sleep(0)
    book.write("team", "hello", "r1", "stdout", "second")
    assert await asyncio.wait_for(following, 10) == "T r1 stdout: second"
    await lines.aclose()
    await book.close()


def test_without_a_loop_lines_are_written_at_once(tmp_path: Path) -> None:
    book = LogBook(tmp_path, stamp=stamp)
    book.write("team", "hello", "r1", "stdout", "now")
    assert (tmp_path / "team" / "hello.log").read_text() == "T r1 stdout: now\n"


def test_drops_are_platform_metrics(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    drops = LogDrops()
    LogBook(tmp_path, drops=drops, registry=registry)
    drops.add("rate", 7, 70)
    drops.add("error", 1, 10)
    text = generate_latest(registry).decode()
    assert 'log_dropped_lines_total{reason="rate"} 7.0' in text
    assert 'log_dropped_bytes_total{reason="rate"} 70.0' in text
    assert 'log_dropped_lines_total{reason="error"} 1.0' in text
    assert 'log_dropped_lines_total{reason="backlog"} 0.0' in text
