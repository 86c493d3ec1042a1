"""git pushes and clones need a token whose role may write or read source there."""

from __future__ import annotations

from pathlib import Path

from git_receiver import Receiver
from gitkit import HELLO_MAIN, HELLO_YAML, WorkTree

from fnmesh.platform.store.tokens import Tokens

HELLO = {"fn.yaml": HELLO_YAML, "main.py": HELLO_MAIN}


def tokens_of(receiver: Receiver) -> Tokens:
    tokens = receiver.service.tokens
    assert isinstance(tokens, Tokens)
    return tokens


async def test_a_viewer_may_neither_push_nor_clone(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    viewer, _ = tokens_of(receiver).create("viewer")
    work = WorkTree(tmp_path / "hello", env)
    work.commit(HELLO)
    done = await work.arun("push", receiver.url("hello", token=viewer), "main")
    assert done.code != 0
    assert "role 'viewer' may not write source" in done.err, done.err
    assert receiver.store.list("Function")[0] == []
    assert (await work.arun("push", receiver.url("hello"), "main")).code == 0  # admin
    done = await work.arun("clone", receiver.url("hello", token=viewer), str(tmp_path / "c"))
    assert done.code != 0 and "may not read source" in done.err, done.err


async def test_a_scoped_deployer_pushes_only_to_its_namespace(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    scoped, _ = tokens_of(receiver).create("deployer", namespace="team-a")
    work = WorkTree(tmp_path / "hello", env)
    work.commit(HELLO)
    done = await work.arun("push", receiver.url("hello", token=scoped), "main")
    assert done.code != 0 and "limited to namespace 'team-a'" in done.err, done.err
    assert not receiver.repo("hello").exists()
