"""Bare repositories on disk, the hook they carry, and a commit's tree as a bundle."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from gitkit import HELLO_MAIN, HELLO_YAML, WorkTree

from fnmesh.platform.build import BuildLimits, read_member
from fnmesh.platform.git.previews import Preview, PreviewRecords
from fnmesh.platform.git.repos import (
    HOOK_NAME,
    HOOK_SOURCE,
    Objects,
    Repositories,
    check_quarantine,
    install_hook,
)
from fnmesh.platform.git.source import SourceRefused, commit_bundle
from fnmesh.platform.git.urls import RepoRef

HELLO = RepoRef("default", "hello")


def config(repo: Path, key: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo}", "config", key], capture_output=True, text=True
    ).stdout.strip()


def members(bundle: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        return sorted(m.name for m in tar.getmembers())


async def test_a_repository_is_made_once_with_the_hook_and_settings(tmp_path: Path) -> None:
    repos = Repositories(tmp_path / "git")
    assert not repos.exists(HELLO)
    path = await repos.ensure(HELLO)
    assert path == tmp_path / "git" / "default" / "hello.git"
    assert repos.exists(HELLO)
    hook = path / "hooks" / HOOK_NAME
    assert hook.read_bytes() == HOOK_SOURCE.read_bytes()
    assert os.access(hook, os.X_OK)
    assert config(path, "receive.denyNonFastForwards") == "true"
    assert config(path, "receive.fsckObjects") == "true"
    assert (path / "HEAD").read_text().strip() == "ref: refs/heads/main"
    assert [p.name for p in path.parent.iterdir()] == ["hello.git"]  # no scratch left
    hook.write_text("#!/bin/sh\nexit 0\n")
    assert await repos.ensure(HELLO) == path
    assert hook.read_bytes() == HOOK_SOURCE.read_bytes()  # an outdated hook is replaced
    assert await repos.refs(path) == {}


async def test_concurrent_first_uses_make_one_repository(tmp_path: Path) -> None:
    repos = Repositories(tmp_path / "git")
    paths = await asyncio.gather(*(repos.ensure(HELLO) for _ in range(4)))
    assert len(set(paths)) == 1
    assert [p.name for p in paths[0].parent.iterdir()] == ["hello.git"]


def test_the_hook_refuses_pushes_that_bypass_the_platform(
    tmp_path: Path, env: dict[str, str]
) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True, env=env)
    install_hook(bare)
    work = WorkTree(tmp_path / "work", env)
    work.commit({"fn.yaml": HELLO_YAML, "main.py": HELLO_MAIN})
    done = work.run("push", str(bare), "main", check=False)
    assert done.code != 0
    assert "takes pushes through the platform's API only" in done.err
    assert "pre-receive hook declined" in done.err


def test_only_a_quarantine_of_the_repository_is_accepted(tmp_path: Path) -> None:
    repo = tmp_path / "hello.git"
    incoming = repo / "objects" / "tmp_objdir-incoming-abc123"
    incoming.mkdir(parents=True)
    assert check_quarantine(repo, str(incoming)) == incoming.resolve()
    assert check_quarantine(repo, None) is None
    for bad in (str(tmp_path), str(repo / "objects"), str(repo / "objects" / "pack")):
        with pytest.raises(ValueError, match="not a push quarantine"):
            check_quarantine(repo, bad)


async def fetched(tmp_path: Path, work: WorkTree) -> tuple[Repositories, Path]:
    repos = Repositories(tmp_path / "git")
    path = await repos.ensure(HELLO)
    fetch = await asyncio.create_subprocess_exec(
        *["git", f"--git-dir={path}", "fetch", "--quiet", str(work.path), "+main:refs/heads/main"],
        env=work.env,
    )
    assert await fetch.wait() == 0
    return repos, path


async def test_a_commit_is_packed_like_fn_deploy_packs_a_folder(
    tmp_path: Path, env: dict[str, str]
) -> None:
    work = WorkTree(tmp_path / "work", env)
    commit = work.commit(
        {
            "fn.yaml": HELLO_YAML,
            "main.py": HELLO_MAIN,
            ".fnignore": "notes/\n",
            "notes/todo.txt": "not deployed\n",
            "lib/helper.py": "X = 1\n",
        }
    )
    repos, path = await fetched(tmp_path, work)
    bundle = await commit_bundle(
        repos, Objects(path), commit, "", scratch=tmp_path / "scratch", limits=BuildLimits()
    )
    assert members(bundle) == [".fnignore", "fn.yaml", "lib/helper.py", "main.py"]
    assert read_member(bundle, "main.py", BuildLimits()) == HELLO_MAIN.encode()
    assert list((tmp_path / "scratch").iterdir()) == []


async def test_a_sub_folder_is_packed_on_its_own(tmp_path: Path, env: dict[str, str]) -> None:
    work = WorkTree(tmp_path / "work", env)
    commit = work.commit(
        {"README.md": "repo\n", "fns/hello/fn.yaml": HELLO_YAML, "fns/hello/main.py": HELLO_MAIN}
    )
    repos, path = await fetched(tmp_path, work)
    bundle = await commit_bundle(
        repos, Objects(path), commit, "fns/hello", scratch=tmp_path / "s", limits=BuildLimits()
    )
    assert members(bundle) == ["fn.yaml", "main.py"]
    with pytest.raises(SourceRefused, match="has no folder 'fns/other'"):
        await commit_bundle(
            repos, Objects(path), commit, "fns/other", scratch=tmp_path / "s", limits=BuildLimits()
        )
    with pytest.raises(SourceRefused, match=r"has no fn\.yaml at its root") as caught:
        await commit_bundle(
            repos, Objects(path), commit, "", scratch=tmp_path / "s", limits=BuildLimits()
        )
    assert "--path FOLDER" in str(caught.value)
    with pytest.raises(SourceRefused, match=r"has no fn\.yaml in its folder 'fns'"):
        await commit_bundle(
            repos, Objects(path), commit, "fns", scratch=tmp_path / "s", limits=BuildLimits()
        )


async def test_links_out_of_the_function_and_oversized_trees_are_refused(
    tmp_path: Path, env: dict[str, str]
) -> None:
    work = WorkTree(tmp_path / "work", env)
    work.write({"fn.yaml": HELLO_YAML, "main.py": HELLO_MAIN})
    os.symlink("../../etc/passwd", work.path / "secret")
    commit = work.commit({})
    repos, path = await fetched(tmp_path, work)
    with pytest.raises(SourceRefused, match="'secret' cannot be deployed"):
        await commit_bundle(
            repos, Objects(path), commit, "", scratch=tmp_path / "s", limits=BuildLimits()
        )
    work.run("rm", "--quiet", "secret")
    commit = work.commit({"data.bin": "x" * 5000})
    repos, path = await fetched(tmp_path, work)
    with pytest.raises(SourceRefused, match="max_unpacked_bytes"):
        await commit_bundle(
            repos,
            Objects(path),
            commit,
            "",
            scratch=tmp_path / "s",
            limits=BuildLimits(max_unpacked_bytes=1000, max_files=1),
        )


def test_preview_records(tmp_path: Path) -> None:
    records = PreviewRecords(tmp_path / "hello.git")
    assert records.all() == [] and records.owners() == {}
    preview = Preview("feature/x", "feature-x", "a" * 40, "b1", "sha256:00", None, "main:handle")
    records.save(preview)
    assert records.get("feature-x") == preview
    assert records.owners() == {"feature-x": "feature/x"}
    (records.folder / "junk.json").write_text("{not json")
    assert records.all() == [preview]
    assert records.remove("feature-x") is True
    assert records.remove("feature-x") is False
    assert records.get("feature-x") is None
