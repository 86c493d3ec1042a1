"""Live build lines, pushes taking turns, branches and tags, and `fn git-remote`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from git_receiver import Receiver, running_receiver
from gitkit import HELLO_MAIN, HELLO_YAML, WorkTree, remote_head, wait_until

from fnmesh.platform.deploy import DeployResult, DeployService
from fnmesh.platform.deploy.service import LogSink
from fnmesh.platform.git.previews import PreviewRecords
from fnmesh.platform.git.remote import answer_credential, helper_key, parse_credential_request
from fnmesh.platform.model import Manifest

HELLO = {"fn.yaml": HELLO_YAML, "main.py": HELLO_MAIN}


class HeldDeployer:
    """The real deploy service, with a say in when each deploy may go on."""

    def __init__(self, inner: DeployService) -> None:
        self.inner = inner
        self.limits = inner.limits
        self.hold = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.active = 0
        self.most_active = 0

    def prepare(self, namespace: str, name: str | None, bundle: bytes) -> Manifest:
        return self.inner.prepare(namespace, name, bundle)

    async def deploy(
        self,
        manifest: Manifest,
        bundle: bytes,
        *,
        build_id: str,
        commit: str | None = None,
        log: LogSink | None = None,
    ) -> DeployResult:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.hold:
                assert log is not None
                await log("first step of the build: marker-7f3a")
                self.entered.set()
                # goes on only once the pusher has seen the line above (or fails the push)
                await asyncio.wait_for(self.release.wait(), 30)
            return await self.inner.deploy(
                manifest, bundle, build_id=build_id, commit=commit, log=log
            )
        finally:
            self.active -= 1


async def test_build_lines_reach_the_pusher_while_the_build_runs(
    tmp_path: Path, env: dict[str, str]
) -> None:
    held: list[HeldDeployer] = []

    def wrap(inner: DeployService) -> HeldDeployer:
        held.append(HeldDeployer(inner))
        return held[0]

    async with running_receiver(tmp_path / "home", wrap_deployer=wrap) as receiver:
        deployer = held[0]
        deployer.hold = True
        work = WorkTree(tmp_path / "hello", env)
        work.commit(HELLO)

        def on_line(text: str) -> None:
            if "marker-7f3a" in text:
                deployer.release.set()

        done = await work.arun("push", receiver.url("hello"), "main", on_line=on_line)
        assert done.code == 0, done.text
        lines = done.err.splitlines()
        marker = next(i for i, line in enumerate(lines) if "marker-7f3a" in line)
        assert lines[marker].startswith("remote:   first step of the build")
        assert any("succeeded" in line for line in lines[marker:])


async def test_concurrent_pushes_to_one_function_take_turns(
    tmp_path: Path, env: dict[str, str]
) -> None:
    held: list[HeldDeployer] = []

    def wrap(inner: DeployService) -> HeldDeployer:
        held.append(HeldDeployer(inner))
        return held[0]

    async with running_receiver(tmp_path / "home", wrap_deployer=wrap) as receiver:
        deployer = held[0]
        first = WorkTree(tmp_path / "first", env)
        first.commit(HELLO)
        assert (await first.arun("push", receiver.url("hello"), "main")).code == 0
        second = tmp_path / "second"
        assert (await first.arun("clone", "--quiet", receiver.url("hello"), str(second))).code == 0
        other = WorkTree(second, env)
        mine = first.commit({"main.py": HELLO_MAIN + "# first\n"})
        other.commit({"extra.py": "SECOND = True\n"})

        deployer.hold = True
        pushing = asyncio.create_task(first.arun("push", receiver.url("hello"), "main"))
        await asyncio.wait_for(deployer.entered.wait(), 30)
        racing = asyncio.create_task(other.arun("push", receiver.url("hello"), "main"))
        await wait_until(
            "the second push to wait", lambda: receiver.service.waiting(("default", "hello")) == 1
        )
        deployer.release.set()
        done, lost = await asyncio.gather(pushing, racing)
        assert done.code == 0, done.text
        assert lost.code != 0
        assert "! [remote rejected] main -> main" in lost.err
        assert "another push got there first" in lost.err
        assert deployer.most_active == 1
        assert remote_head(receiver.repo("hello")) == mine

        deployer.hold = False
        pulled = await other.arun(
            "pull", "--quiet", "--no-rebase", "--no-edit", receiver.url("hello"), "main"
        )
        assert pulled.code == 0, pulled.text
        merged = other.head()
        again = await other.arun("push", receiver.url("hello"), "main")
        assert again.code == 0, again.text
        assert remote_head(receiver.repo("hello")) == merged


async def test_branches_build_previews_and_tags_are_kept(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    work = WorkTree(tmp_path / "hello", env)
    main = work.commit(HELLO)
    work.run("remote", "add", "fn", receiver.url("hello"))
    assert (await work.arun("push", "fn", "main")).code == 0
    work.run("checkout", "--quiet", "-b", "feature/Login")
    feature = work.commit({"main.py": HELLO_MAIN + "# login\n"})
    done = await work.arun("push", "fn", "feature/Login")
    assert done.code == 0, done.text
    assert "preview 'feature-login' built" in done.err
    assert remote_head(receiver.repo("hello"), "refs/heads/feature/Login") == feature
    preview = PreviewRecords(receiver.repo("hello")).get("feature-login")
    assert preview is not None and preview.commit == feature and preview.branch == "feature/Login"
    function = receiver.function("hello")
    assert function.spec.artifact is not None and function.spec.artifact.commit == main
    # the preview is a revision of its own, reached by its tag at 0 % of the traffic
    assert "revision hello-00002 serves the preview at " in done.err
    assert "/fn/hello@feature-login/" in done.err
    assert [(t.revision, t.tag) for t in function.spec.traffic] == [
        ("hello-00002", "feature-login")
    ]
    revision = receiver.revisions("hello")[-1]
    assert revision.spec.artifact.commit == feature
    assert revision.metadata.labels["fnmesh.dev/preview"] == "feature-login"
    await wait_until(
        "the preview's tag in the status",
        lambda: any(t.tag == "feature-login" for t in receiver.function("hello").status.traffic),
    )
    served = receiver.function("hello").status
    assert served.latest_created_revision == "hello-00001"
    assert [(t.revision, t.percent) for t in served.traffic if t.percent] == [("hello-00001", 100)]

    work.run("checkout", "--quiet", "main")
    work.commit({"fn.yaml": "name: hello\n"})  # an invalid manifest on a branch is refused too
    work.run("branch", "broken")
    work.run("reset", "--quiet", "--hard", main)
    done = await work.arun("push", "fn", "broken")
    assert "! [remote rejected] broken -> broken" in done.err and "handler" in done.err

    done = await work.arun("push", "fn", "--delete", "feature/Login")
    assert done.code == 0, done.text
    assert "preview 'feature-login' of feature/Login removed" in done.err
    assert PreviewRecords(receiver.repo("hello")).all() == []

    work.run("tag", "v1")
    done = await work.arun("push", "fn", "v1")
    assert done.code == 0 and "refs/tags/v1 updated (nothing to build)" in done.err
    done = await work.arun("push", "fn", "--delete", "main")
    assert "deleting main is refused" in done.err
    assert remote_head(receiver.repo("hello")) == main
    await wait_until(
        "the preview revision to be deleted",
        lambda: [r.name for r in receiver.revisions("hello")] == ["hello-00001"],
    )
    assert receiver.function("hello").spec.traffic == []


def fn_cli(
    *args: str, cwd: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fnmesh.platform.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_fn_git_remote_sets_up_push_without_writing_the_token(
    receiver: Receiver, env: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "fnhome"
    home.mkdir()
    (home / "context.json").write_text(
        json.dumps({"api": receiver.api, "gateway": "http://127.0.0.1:1", "token": receiver.token})
    )
    outside = fn_cli("git-remote", "hello", "--home", str(home), cwd=tmp_path, env=env)
    assert outside.returncode == 0, outside.stderr
    assert outside.stdout == f"{receiver.api}/git/hello.git\n"
    assert "not inside a git work tree" in outside.stderr

    work = WorkTree(tmp_path / "hello", env)
    commit = work.commit(HELLO)
    set_up = fn_cli("git-remote", "hello", "--home", str(home), cwd=work.path / ".", env=env)
    assert set_up.returncode == 0, set_up.stderr
    assert "remote 'fn' added" in set_up.stderr
    assert work.run("remote", "get-url", "fn").out.strip() == f"{receiver.api}/git/hello.git"
    helpers = work.run("config", "--get-all", helper_key(receiver.api)).out.splitlines()
    assert helpers[0] == "" and "git-credential --home" in helpers[1]
    assert receiver.token not in (work.path / ".git" / "config").read_text()

    done = await work.arun("push", "fn", "main")
    assert done.code == 0, done.text
    assert remote_head(receiver.repo("hello")) == commit
    again = fn_cli("git-remote", "hello", "-n", "team", "--home", str(home), cwd=work.path, env=env)
    assert "remote 'fn' updated" in again.stderr
    assert work.run("remote", "get-url", "fn").out.strip() == f"{receiver.api}/git/team/hello.git"
    assert len(work.run("config", "--get-all", helper_key(receiver.api)).out.splitlines()) == 2

    host = receiver.api.removeprefix("http://")
    asked = fn_cli(
        "git-credential",
        "--home",
        str(home),
        "get",
        cwd=tmp_path,
        env=env,
        stdin=f"protocol=http\nhost={host}\n\n",
    )
    assert asked.stdout == f"username=fn\npassword={receiver.token}\n"
    other = fn_cli(
        "git-credential",
        "--home",
        str(home),
        "get",
        cwd=tmp_path,
        env=env,
        stdin="protocol=https\nhost=github.com\n\n",
    )
    assert other.returncode == 0 and other.stdout == ""


def test_credential_answers() -> None:
    request = parse_credential_request(["protocol=http\n", "host=127.0.0.1:8081\n", "\n", "x=y\n"])
    assert request == {"protocol": "http", "host": "127.0.0.1:8081"}
    api = "http://127.0.0.1:8081"
    assert answer_credential(request, api=api, token="t") == "username=fn\npassword=t\n"
    assert answer_credential({**request, "host": "127.0.0.1:8082"}, api=api, token="t") == ""
    assert helper_key(api + "/") == "credential.http://127.0.0.1:8081.helper"
