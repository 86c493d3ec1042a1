"""The real git client against the receiver: pushes deploy, or are refused and move nothing."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from git_receiver import Receiver, running_receiver
from gitkit import HELLO_MAIN, HELLO_YAML, WorkTree, remote_head
from support.e2e import http

HELLO = {"fn.yaml": HELLO_YAML, "main.py": HELLO_MAIN}
# pip fails at once, without the network: no index, and a package nobody has
BROKEN_REQUIREMENTS = "--no-index\nfnmesh-no-such-package-anywhere==1.0\n"


def rejected(text: str, ref: str = "main") -> bool:
    return f"! [remote rejected] {ref} -> {ref}" in text


async def test_first_push_creates_the_function_and_the_last_lines_say_where_it_serves(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    commit = work.commit(HELLO)
    done = await work.arun("push", receiver.url("hello"), "main")
    assert done.code == 0, done.text
    assert "* [new branch]      main -> main" in done.err
    assert remote_head(receiver.repo("hello")) == commit
    function = receiver.function("hello")
    assert function.spec.artifact is not None and function.spec.artifact.commit == commit
    assert [r.spec.artifact.commit for r in receiver.revisions("hello")] == [commit]
    remote = [line for line in done.err.splitlines() if line.startswith("remote:")]
    assert any("remote:   build " in line and "succeeded" in line for line in remote)
    assert f"revision hello-00001 serves commit {commit[:12]}" in remote[-2]
    assert f"URL: {receiver.api}/fn/hello/" in remote[-1]


async def test_a_second_push_rolls_out_a_new_revision(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    work.commit(HELLO)
    work.run("remote", "add", "fn", receiver.url("hello"))
    assert (await work.arun("push", "fn", "main")).code == 0
    second = work.commit({"main.py": HELLO_MAIN.replace("hello", "howdy")})
    done = await work.arun("push", "fn", "main")
    assert done.code == 0, done.text
    assert "revision hello-00002 serves commit" in done.err
    assert remote_head(receiver.repo("hello")) == second
    status = receiver.function("hello").status
    assert status.latest_ready_revision == "hello-00002"


async def test_a_failed_build_rejects_the_push_and_keeps_the_running_revision(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    good = work.commit(HELLO)
    work.run("remote", "add", "fn", receiver.url("hello"))
    assert (await work.arun("push", "fn", "main")).code == 0
    work.commit({"requirements.txt": BROKEN_REQUIREMENTS})
    done = await work.arun("push", "fn", "main")
    assert done.code != 0
    assert rejected(done.err), done.err
    assert "fnmesh-no-such-package-anywhere" in done.err  # pip's own words, relayed
    assert "failed" in done.err and "the running revision keeps serving" in done.err
    assert remote_head(receiver.repo("hello")) == good
    function = receiver.function("hello")
    assert function.spec.artifact is not None and function.spec.artifact.commit == good
    assert function.status.latest_ready_revision == "hello-00001"
    assert [r.name for r in receiver.revisions("hello")] == ["hello-00001"]


async def test_a_revision_that_cannot_start_rejects_the_push(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    good = work.commit(HELLO)
    work.run("remote", "add", "fn", receiver.url("hello"))
    assert (await work.arun("push", "fn", "main")).code == 0
    work.commit({"fn.yaml": HELLO_YAML + "env:\n  FAIL_START: '1'\n"})
    done = await work.arun("push", "fn", "main")
    assert rejected(done.err), done.err
    assert "revision hello-00002 failed" in done.err
    assert "the previous revision keeps serving" in done.err
    assert remote_head(receiver.repo("hello")) == good
    assert receiver.function("hello").status.traffic[0].revision == "hello-00001"


async def test_pushes_without_a_usable_fn_yaml_say_what_is_missing(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    work.run("remote", "add", "fn", receiver.url("hello"))
    work.commit({"main.py": HELLO_MAIN})
    done = await work.arun("push", "fn", "main")
    assert rejected(done.err)
    assert "has no fn.yaml at its root" in done.err
    work.commit({"fn.yaml": "name: other\nhandler: main:handle\n"})
    done = await work.arun("push", "fn", "main")
    assert rejected(done.err)
    assert "fn.yaml names the function 'other'" in done.err
    work.commit({"fn.yaml": "name: hello\nhandler: nope\ntimeout: soon\n"})
    done = await work.arun("push", "fn", "main")
    assert rejected(done.err)
    assert "handler" in done.err and "timeout" in done.err
    assert remote_head(receiver.repo("hello")) is None
    assert receiver.store.list("Function")[0] == []


async def test_wrong_or_missing_tokens_are_refused(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    work.commit(HELLO)
    bare_url = receiver.url("hello").replace(f"fn:{receiver.token}@", "")
    done = await work.arun("push", bare_url, "main")
    assert done.code != 0
    assert "terminal prompts disabled" in done.err or "Authentication failed" in done.err
    done = await work.arun("push", receiver.url("hello", token="fnm_wrong"), "main")
    assert done.code != 0
    assert "Authentication failed" in done.err
    done = await work.arun("ls-remote", receiver.url("hello", token="fnm_wrong"))
    assert "Authentication failed" in done.err
    assert not receiver.repo("hello").exists()
    assert receiver.store.list("Function")[0] == []


async def test_clone_and_fetch_need_the_token_too(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    commit = work.commit(HELLO)
    assert (await work.arun("push", receiver.url("hello"), "main")).code == 0
    clone = tmp_path / "clone"
    done = await work.arun("clone", "--quiet", receiver.url("hello"), str(clone))
    assert done.code == 0, done.text
    assert (clone / "main.py").read_text() == HELLO_MAIN
    assert WorkTree(clone, env).head() == commit
    done = await work.arun("clone", receiver.url("hello", token="x"), str(tmp_path / "nope"))
    assert done.code != 0 and "Authentication failed" in done.err
    done = await work.arun("ls-remote", receiver.url("missing"))
    assert done.code != 0 and "has no repository yet" in done.err


async def test_non_fast_forward_pushes_are_refused_even_when_forced(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    work.commit(HELLO)
    work.run("remote", "add", "fn", receiver.url("hello"))
    pushed = work.commit({"main.py": HELLO_MAIN + "# two\n"})
    assert (await work.arun("push", "fn", "main")).code == 0
    work.run("reset", "--quiet", "--hard", "HEAD~1")
    work.commit({"main.py": HELLO_MAIN + "# rewritten\n"})
    done = await work.arun("push", "fn", "main")
    assert done.code != 0 and "non-fast-forward" in done.err  # git's own client-side check
    done = await work.arun("push", "--force", "fn", "main")
    assert rejected(done.err), done.err
    assert "non-fast-forward update refused" in done.err
    assert remote_head(receiver.repo("hello")) == pushed


async def test_pushes_over_the_size_limit_are_refused_before_anything_is_stored(
    tmp_path: Path, env: dict[str, str]
) -> None:
    async with running_receiver(tmp_path / "home", max_bundle_bytes=64 * 1024) as receiver:
        work = WorkTree(tmp_path / "hello", env)
        work.write(HELLO)
        (work.path / "blob.bin").write_bytes(os.urandom(200 * 1024))  # does not compress
        work.commit({})
        for post_buffer in ("1m", "16k"):  # one request with a length; a chunked one
            done = await work.arun(
                "-c", f"http.postBuffer={post_buffer}", "push", receiver.url("hello"), "main"
            )
            assert done.code != 0
            assert rejected(done.err), done.err
            assert "over the size limit of 65536 bytes" in done.err
            assert "build.max_bundle_bytes" in done.err
        repo = receiver.repo("hello")
        assert remote_head(repo) is None
        assert not [p for p in (repo / "objects").iterdir() if p.name.startswith("tmp_objdir")]
        assert receiver.store.list("Function")[0] == []


async def test_a_function_in_a_sub_folder_and_another_namespace(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "mono", env)
    commit = work.commit(
        {
            "README.md": "many functions\n",
            "fns/hello/fn.yaml": HELLO_YAML,
            "fns/hello/main.py": HELLO_MAIN,
        }
    )
    url = receiver.url("hello", namespace="team", subdir="fns/hello")
    done = await work.arun("push", url, "main")
    assert done.code == 0, done.text
    assert remote_head(receiver.repo("hello", "team")) == commit
    function = receiver.store.get("Function", "team", "hello")
    assert function["spec"]["artifact"]["commit"] == commit


async def test_what_is_not_a_git_smart_http_call_is_refused_plainly(
    receiver: Receiver,
) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"fn:{receiver.token}".encode()).decode()}

    async def call(
        method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        reply = await asyncio.to_thread(
            http, method, receiver.api + path, b"{}" if method == "POST" else None, headers
        )
        return reply.status, reply.body.decode()

    status, text = await call("GET", "/git/hello.git/info/refs", auth)
    assert status == 403 and "smart HTTP" in text  # the dumb protocol is not served
    status, text = await call("GET", "/git/hello.git/HEAD", auth)
    assert status == 404 and "<api>/git/NAME.git" in text
    status, text = await call("GET", "/git/hello.git/info/refs?service=git-receive-pack")
    assert status == 401
    status, text = await call("POST", "/git/-/pre-receive", {"Fnmesh-Push-Secret": "guess"})
    assert status == 403 and "no push in flight" in text
    status, text = await call("GET", "/git/-/pre-receive")
    assert status == 405
    # the bearer token of the API is not what git sends: /git/ ignores it
    bearer = {"Authorization": f"Bearer {receiver.token}"}
    status, _ = await call("GET", "/git/hello.git/info/refs?service=git-upload-pack", bearer)
    assert status == 401
