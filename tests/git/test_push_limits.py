"""A push that describes more than the limits allow is refused early, in bounded memory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from git_receiver import running_receiver
from gitkit import HELLO_MAIN, HELLO_YAML, WorkTree, remote_head

from fnmesh.platform.build import BuildLimits
from fnmesh.platform.git.repos import (
    CHUNK,
    ArchiveTooLarge,
    LimitedFile,
    Objects,
    Repositories,
    TreeFile,
    stream_git,
)
from fnmesh.platform.git.source import SourceRefused, TreeBudget
from fnmesh.platform.git.urls import RepoRef

MiB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_a_huge_file_is_refused_before_it_is_unpacked_and_memory_stays_flat(
    tmp_path: Path, env: dict[str, str]
) -> None:
    async with running_receiver(tmp_path / "home", max_unpacked_bytes=1 * MiB) as receiver:
        work = WorkTree(tmp_path / "hello", env)
        work.write({"fn.yaml": HELLO_YAML, "main.py": HELLO_MAIN})
        with (work.path / "zeros.bin").open("wb") as out:  # 64 MiB that compress to almost nothing
            for _ in range(64):
                out.write(bytes(MiB))
        commit = work.commit({})
        baseline = rss()
        peak = baseline
        pushing = asyncio.create_task(work.arun("push", receiver.url("hello"), "main"))
        while not pushing.done():  # the receiver runs in this process: sample its memory
            peak = max(peak, rss())
            await asyncio.sleep(0.005)
        done = pushing.result()
        assert done.code != 0
        assert "! [remote rejected] main -> main" in done.err, done.err
        assert (
            f"remote: error: commit {commit[:12]} has the file 'zeros.bin' of {64 * MiB} bytes, "
            f"over build.max_unpacked_bytes ({MiB} bytes)"
        ) in done.err
        assert "raise build.max_unpacked_bytes" in done.err
        print(f"RSS {baseline / MiB:.0f} MiB before, {peak / MiB:.0f} MiB at most during the push")
        assert peak - baseline < 24 * MiB
        assert remote_head(receiver.repo("hello")) is None
        assert receiver.store.list("Function")[0] == []
        assert list((receiver.home / "git").rglob("push-*")) == []


async def test_the_archive_streams_to_disk_and_stops_at_its_limit(
    tmp_path: Path, env: dict[str, str]
) -> None:
    work = WorkTree(tmp_path / "work", env)
    work.write({"fn.yaml": HELLO_YAML, "main.py": HELLO_MAIN})
    (work.path / "big.bin").write_bytes(os.urandom(3 * MiB))
    commit = work.commit({})
    repos = Repositories(tmp_path / "git")
    path = await repos.ensure(RepoRef("default", "hello"))
    fetch = await asyncio.create_subprocess_exec(
        "git", f"--git-dir={path}", "fetch", "--quiet", str(work.path), "+main:refs/heads/main",
        env=work.env,
    )  # fmt: skip
    assert await fetch.wait() == 0

    chunks: list[int] = []
    await stream_git(
        ["archive", "--format=tar", commit], git_dir=path, sink=lambda c: chunks.append(len(c))
    )
    assert sum(chunks) > 3 * MiB
    assert max(chunks) <= CHUNK  # never more than one chunk in hand

    dest = tmp_path / "tree.tar"
    with pytest.raises(ArchiveTooLarge):
        await repos.archive(Objects(path), commit, dest, max_bytes=MiB)
    assert not dest.exists()
    written = await repos.archive(Objects(path), commit, dest, max_bytes=4 * MiB)
    assert written == dest.stat().st_size > 3 * MiB

    listed: list[TreeFile] = []
    await repos.list_files(Objects(path), commit, listed.append)
    assert sorted((f.path, f.size) for f in listed) == [
        ("big.bin", 3 * MiB),
        ("fn.yaml", len(HELLO_YAML)),
        ("main.py", len(HELLO_MAIN)),
    ]


def test_a_limited_file_refuses_to_grow_past_its_limit(tmp_path: Path) -> None:
    out = LimitedFile(tmp_path / "f", 10)
    out.write(b"12345")
    out.write(b"67890")
    with pytest.raises(ArchiveTooLarge):
        out.write(b"x")
    out.discard()
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([("a", 10), ("big.bin", 101)], "has the file 'big.bin' of 101 bytes, over build.max_"),
        ([("a", 60), ("b", 41)], "holds more than 100 bytes of source (build.max_unpacked_bytes"),
        ([("a", 1), ("b", 1), ("c", 1), ("d", 1)], "holds more than 3 files (build.max_files)"),
    ],
)
def test_the_tree_budget_refuses_at_the_first_file_over_a_limit(
    files: list[tuple[str, int]], words: str
) -> None:
    budget = TreeBudget("c" * 40, BuildLimits(max_unpacked_bytes=100, max_files=3))
    *fine, (last_name, last_size) = files
    for name, size in fine:
        budget(TreeFile(name, size))
    with pytest.raises(SourceRefused) as caught:
        budget(TreeFile(last_name, last_size))
    assert words in str(caught.value)
    assert str(caught.value).startswith("commit cccccccccccc ")


def test_a_tree_within_the_limits_passes() -> None:
    budget = TreeBudget("c" * 40, BuildLimits(max_unpacked_bytes=100, max_files=3))
    for name, size in [("a", 50), ("b", 50), ("c", 0)]:
        budget(TreeFile(name, size))
    assert (budget.files, budget.total) == (3, 100)
